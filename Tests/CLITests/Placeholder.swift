import XCTest
@testable import ranksweep

final class CLITestsPlaceholder: XCTestCase {
    func testModuleLoads() { XCTAssertTrue(true) }
}
