import XCTest
@testable import Engine

final class EngineTestsPlaceholder: XCTestCase {
    func testModuleLoads() { XCTAssertTrue(true) }
}
