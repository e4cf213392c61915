import XCTest
@testable import Compression

final class CompressionTestsPlaceholder: XCTestCase {
    func testModuleLoads() { XCTAssertTrue(true) }
}
