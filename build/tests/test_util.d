build/tests/test_util: tests/unit/test_util.c tests/unit/check.h \
 include/mesh_util.h include/mesh_err.h
tests/unit/check.h:
include/mesh_util.h:
include/mesh_err.h:
