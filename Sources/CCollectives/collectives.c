// MPI's collectives behind plain C functions (see collectives.h).
#include "collectives.h"

#include <mpi.h>
#include <stdlib.h>

/* MPI counts are ints: larger buffers go in pieces. */
static const long chunk = 1L << 28;

int sagan_mpi_launched(void) {
    const char *variables[] = {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE"};
    for (unsigned i = 0; i < sizeof variables / sizeof variables[0]; i++)
        if (getenv(variables[i])) return 1;
    return 0;
}

int sagan_mpi_init(int *rank, int *size, char *message, int messageCapacity) {
    int provided = 0;
    int status = MPI_Init_thread(0, 0, MPI_THREAD_FUNNELED, &provided);
    if (status == MPI_SUCCESS) status = MPI_Comm_rank(MPI_COMM_WORLD, rank);
    if (status == MPI_SUCCESS) status = MPI_Comm_size(MPI_COMM_WORLD, size);
    if (status != MPI_SUCCESS && message && messageCapacity > 0) {
        char text[MPI_MAX_ERROR_STRING];
        int length = 0;
        MPI_Error_string(status, text, &length);
        int count = length < messageCapacity - 1 ? length : messageCapacity - 1;
        for (int i = 0; i < count; i++) message[i] = text[i];
        message[count] = 0;
    }
    return status;
}

static int allreduce(void *values, long count, MPI_Datatype type, long elementSize, MPI_Op op) {
    for (long start = 0; start < count; start += chunk) {
        int piece = (int)(count - start < chunk ? count - start : chunk);
        int status = MPI_Allreduce(MPI_IN_PLACE, (char *)values + start * elementSize, piece, type, op, MPI_COMM_WORLD);
        if (status != MPI_SUCCESS) return status;
    }
    return MPI_SUCCESS;
}

int sagan_mpi_allreduce_sum_float(float *values, long count) {
    return allreduce(values, count, MPI_FLOAT, sizeof(float), MPI_SUM);
}

int sagan_mpi_allreduce_sum_double(double *values, long count) {
    return allreduce(values, count, MPI_DOUBLE, sizeof(double), MPI_SUM);
}

int sagan_mpi_allreduce_extreme_uint32(uint32_t *values, long count, int maximum) {
    return allreduce(values, count, MPI_UINT32_T, sizeof(uint32_t), maximum ? MPI_MAX : MPI_MIN);
}

int sagan_mpi_allgather_bytes(const void *mine, void *all, int bytes) {
    return MPI_Allgather(mine, bytes, MPI_BYTE, all, bytes, MPI_BYTE, MPI_COMM_WORLD);
}

int sagan_mpi_broadcast_bytes(void *data, long count, int root) {
    for (long start = 0; start < count; start += chunk) {
        int piece = (int)(count - start < chunk ? count - start : chunk);
        int status = MPI_Bcast((char *)data + start, piece, MPI_BYTE, root, MPI_COMM_WORLD);
        if (status != MPI_SUCCESS) return status;
    }
    return MPI_SUCCESS;
}

int sagan_mpi_barrier(void) {
    return MPI_Barrier(MPI_COMM_WORLD);
}

void sagan_mpi_abort(int status) {
    MPI_Abort(MPI_COMM_WORLD, status);
}

int sagan_mpi_finalize(void) {
    return MPI_Finalize();
}

double sagan_mpi_wtime(void) {
    return MPI_Wtime();
}
