import Glibc
import Testing
import NFSAdmin
@testable import VsockBridge

@Suite("the bridge's file descriptor budget")
struct DescriptorBudgetTests {
    @Test("two per connection, the listeners and a reserve")
    func needed() {
        #expect(DescriptorBudget(maxConnections: 1024, listeners: 1).needed == 2 * 1024 + 1 + UInt64(DescriptorBudget.reserve))
        #expect(DescriptorBudget(maxConnections: 16, listeners: 3).needed == 32 + 3 + UInt64(DescriptorBudget.reserve))
    }

    @Test("systemd's soft limit of 1024 is raised to the budget; the hard limit only when it must")
    func limits() {
        let budget = DescriptorBudget(maxConnections: 1024, listeners: 1)
        let needed = budget.needed
        #expect(budget.limits(soft: 1024, hard: 524_288)! == (needed, 524_288))
        #expect(budget.limits(soft: 1024, hard: 1024)! == (needed, needed))
        #expect(budget.limits(soft: 1024, hard: UInt64.max)! == (needed, UInt64.max))
        #expect(budget.limits(soft: needed, hard: needed) == nil)
        #expect(budget.limits(soft: 65_536, hard: 65_536) == nil)
        #expect(budget.limits(soft: UInt64.max, hard: UInt64.max) == nil)
    }

    @Test("a limit that cannot be raised: the refusal names the cap, the need, the limits and the fixes")
    func refusal() {
        let budget = DescriptorBudget(maxConnections: 1024, listeners: 1)
        let text = budget.refusal(soft: 1024, hard: 1024, error: SystemError("setrlimit", "RLIMIT_NOFILE \(budget.needed)", errno: EPERM))
        #expect(text.contains("max-connections 1024 needs \(budget.needed) file descriptors"), "\(text)")
        #expect(text.contains("the limit is 1024 (hard 1024)"), "\(text)")
        #expect(text.contains("Operation not permitted"), "\(text)")
        #expect(text.contains("LimitNOFILE=") && text.contains("lower max-connections"), "\(text)")
    }

    @Test("apply raises this process's soft limit within its hard limit")
    func apply() throws {
        var saved = rlimit()
        #expect(getrlimit(Int32(RLIMIT_NOFILE.rawValue), &saved) == 0)
        defer { _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &saved) }
        let hard = UInt64(saved.rlim_max)
        try #require(hard >= 200)
        var low = rlimit(rlim_cur: 100, rlim_max: saved.rlim_max)
        #expect(setrlimit(Int32(RLIMIT_NOFILE.rawValue), &low) == 0)
        let budget = DescriptorBudget(maxConnections: 50, listeners: 2)
        let said = try budget.apply()
        #expect(said?.contains("raised from 100 to \(budget.needed)") == true, "\(said ?? "nil")")
        var now = rlimit()
        #expect(getrlimit(Int32(RLIMIT_NOFILE.rawValue), &now) == 0)
        #expect(UInt64(now.rlim_cur) == budget.needed && UInt64(now.rlim_max) == hard)
        #expect(try budget.apply() == nil)
    }
}
