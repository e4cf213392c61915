import Foundation
import Prometheus
import Sweep

/// One sweep's Prometheus series (`/metrics`, text format by swift-prometheus), labelled with the
/// sweep's name so `serve` over several state dirs exposes each.
final class DashboardMetrics: Sendable {
    let jobs: [JobState: Gauge]
    let workersAlive: Gauge
    let heartbeatLag: Gauge
    let dispatches: Counter
    let results: Counter
    let artifactBytes: Counter

    init(registry: PrometheusCollectorRegistry, sweep: String) {
        let label = [("sweep", sweep)]
        jobs = Dictionary(uniqueKeysWithValues: JobState.allCases.map {
            ($0, registry.makeGauge(name: "ranksweep_jobs", labels: label + [("state", $0.rawValue)], help: "Jobs by state."))
        })
        workersAlive = registry.makeGauge(name: "ranksweep_workers_alive", labels: label, help: "Workers the coordinator hears from.")
        heartbeatLag = registry.makeGauge(name: "ranksweep_heartbeat_lag_seconds", labels: label,
                                          help: "Longest time since an alive worker was last heard from.")
        dispatches = registry.makeCounter(name: "ranksweep_dispatches_total", labels: label, help: "Attempts dispatched while this dashboard ran.")
        results = registry.makeCounter(name: "ranksweep_results_total", labels: label, help: "Results accepted while this dashboard ran.")
        artifactBytes = registry.makeCounter(name: "ranksweep_artifact_bytes_total", labels: label,
                                             help: "Bytes of artifacts stored while this dashboard ran.")
    }

    func update(_ status: SweepStatus, jobs counts: [JobState: Int]) {
        for (state, gauge) in jobs { gauge.set(Double(counts[state] ?? 0)) }
        let alive = status.workers.filter { $0.state == "alive" }
        workersAlive.set(Double(alive.count))
        heartbeatLag.set(alive.map(\.seenAgo).max() ?? 0)
    }
}
