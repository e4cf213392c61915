import XCTest
@testable import Pipeline

final class PipelineTestsPlaceholder: XCTestCase {
    func testModuleLoads() { XCTAssertTrue(true) }
}
