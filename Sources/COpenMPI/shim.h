// Open MPI's C API (Debian's libopenmpi-dev; found through pkg-config's ompi-c). Only
// CCollectives includes it: MPI's handles are macros Swift cannot import.
#include <mpi.h>
