import Kernels
import Testing

@Suite("Buffer pool")
struct BufferPoolTests {
    @Test func aReleasedLargeBufferIsReusedForTheSameSize() {
        let pool = BufferPool(limit: 64 << 20)
        let first = pool.allocate(3 << 20)
        #expect(Int(bitPattern: first) % 64 == 0)
        pool.release(first, bytes: 3 << 20)
        #expect(pool.idleBytes == 3 << 20)
        // A size within the same 4 KiB page count gets the same buffer back; another size does not.
        let again = pool.allocate((3 << 20) - 100)
        #expect(again == first && pool.idleBytes == 0)
        let other = pool.allocate(5 << 20)
        #expect(other != first)
        pool.release(again, bytes: 3 << 20)
        pool.release(other, bytes: 5 << 20)
        pool.trim()
        #expect(pool.idleBytes == 0)
    }

    @Test func smallBuffersAndBuffersBeyondTheLimitAreFreed() {
        let pool = BufferPool(limit: 4 << 20)
        pool.release(pool.allocate(1000), bytes: 1000)
        #expect(pool.idleBytes == 0)
        let a = pool.allocate(3 << 20)
        let b = pool.allocate(3 << 20)
        pool.release(a, bytes: 3 << 20)
        pool.release(b, bytes: 3 << 20)  // would exceed 4 MiB idle
        #expect(pool.idleBytes == 3 << 20)
        pool.trim()
    }
}
