import XCTest
@testable import Imaging

final class ImagingTestsPlaceholder: XCTestCase {
    func testModuleLoads() { XCTAssertTrue(true) }
}
