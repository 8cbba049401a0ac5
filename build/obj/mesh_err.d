build/obj/mesh_err.o: fs/mesh_err.c include/mesh_err.h
include/mesh_err.h:
