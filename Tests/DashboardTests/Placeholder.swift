import XCTest
@testable import Dashboard
