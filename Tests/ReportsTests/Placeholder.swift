import XCTest
@testable import Reports

final class ReportsTestsPlaceholder: XCTestCase {
    func testModuleLoads() { XCTAssertTrue(true) }
}
