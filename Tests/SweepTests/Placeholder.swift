import XCTest
@testable import Sweep

final class SweepTestsPlaceholder: XCTestCase {
    func testModuleLoads() { XCTAssertTrue(true) }
}
