build/obj/mesh_util.o: fs/mesh_util.c include/mesh_util.h \
 include/mesh_err.h
include/mesh_util.h:
include/mesh_err.h:
