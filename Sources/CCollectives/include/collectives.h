// The few MPI operations data-parallel training needs, as plain C functions Swift can call (MPI's
// handles and constants are macros Swift cannot import). Every function is called from the main
// thread only (MPI_THREAD_FUNNELED).
#ifndef SAGAN_COLLECTIVES_H
#define SAGAN_COLLECTIVES_H

#include <stdint.h>

/// 1 when this process was started by an MPI launcher (mpirun, srun --mpi=pmix, hydra): one of
/// OMPI_COMM_WORLD_SIZE, PMIX_RANK, PMI_RANK or PMI_SIZE is set. Without it, MPI is never
/// initialised: a plain `sagan train` must not start Open MPI's runtime.
int sagan_mpi_launched(void);

/// Initialises MPI (funneled threads) and reads this process's rank and the world size. Returns 0,
/// or MPI's error code with its message in `message`.
int sagan_mpi_init(int *rank, int *size, char *message, int messageCapacity);

/// Sums `count` floats elementwise across all ranks, in place. Returns 0 or MPI's error code.
int sagan_mpi_allreduce_sum_float(float *values, long count);

/// Sums `count` doubles elementwise across all ranks, in place.
int sagan_mpi_allreduce_sum_double(double *values, long count);

/// Elementwise maximum (`maximum` = 1) or minimum (0) of `count` unsigned 32-bit values across all
/// ranks, in place.
int sagan_mpi_allreduce_extreme_uint32(uint32_t *values, long count, int maximum);

/// Every rank's `bytes` bytes from `mine`, in rank order, into `all` (size × bytes).
int sagan_mpi_allgather_bytes(const void *mine, void *all, int bytes);

/// Rank `root`'s `count` bytes at `data`, copied to every rank.
int sagan_mpi_broadcast_bytes(void *data, long count, int root);

/// Waits until every rank has called it.
int sagan_mpi_barrier(void);

/// Ends every process of the job with `status` (after a fatal error on one rank).
void sagan_mpi_abort(int status);

/// Shuts MPI down; the last MPI call of the process.
int sagan_mpi_finalize(void);

/// Seconds on MPI's wall clock.
double sagan_mpi_wtime(void);

#endif
