/// Stops with a message naming the operation and shapes when an operation's arguments are invalid
/// (a programming error, not bad input). Unlike `precondition`, the message is printed in release
/// builds too. Inlinable: the engine calls it in every tensor operation, and a call across the
/// module boundary would allocate the message closure each time.
@inlinable @inline(__always)
public func require(
    _ condition: Bool, _ message: @autoclosure () -> String, file: StaticString = #fileID, line: UInt = #line
) {
    if !condition { fatalError(message(), file: file, line: line) }
}
