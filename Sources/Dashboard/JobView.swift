import Foundation
import Sweep

/// One job as the dashboard shows it: the store's row, its grid settings and, once done, the
/// figures its result carries (whatever kind it is: train, compress, or a test kind with none).
struct JobView: Sendable {
    let id: String
    let kind: String
    /// Plan order.
    let seq: Int
    var state: JobState
    var attempt: Int
    var worker: String?
    var reason: String?
    /// Latest epoch of the running attempt (PROGRESS).
    var epoch: Int?
    var epochs: Int?
    /// The spec's leaves, flattened ("model.base_filters" -> 4); the varying ones are grid axes.
    var settings: [String: Setting]
    var figures = ResultFigures()
    var seconds: Double?
    /// Output file name -> artifact hash.
    var artifacts: [String: String] = [:]

    /// A short label: method and rank/tau for compress jobs, the kind otherwise.
    var label: String {
        if kind == "compress", case .text(let m)? = settings["method"] {
            // A budget sweep's models: the allocation, or uniform SVD at the same budget.
            if m == "allocated", case .text(let plan)? = settings["plan"] {
                return (id.hasPrefix("uniform-svd-") ? "uniform svd " : "budget ") + plan
            }
            if case .number(let r)? = settings["rank"] { return "\(m) r=\(Int(r))" }
            if case .number(let t)? = settings["tau"] { return "\(m) τ=\(t)" }
            return m
        }
        return kind
    }
}

/// A spec leaf: a number or a short text (anything else is shown as its JSON).
enum Setting: Sendable, Equatable, Hashable {
    case number(Double)
    case text(String)

    var json: Any {
        switch self {
        case .number(let v): return v
        case .text(let t): return t
        }
    }
}

/// Dice and size of a finished job, read from its result JSON by key (the dashboard does not
/// link the pipeline that defines those types): `TrainResult` and `CompressResult`.
struct ResultFigures: Sendable, Equatable {
    var dice: Double?
    var parameters: Double?
    var flops: Double?
    /// Compress jobs: Dice kept from the baseline, a fraction.
    var recovery: Double?

    init() {}

    init(resultJSON: String) {
        guard let o = try? JSONSerialization.jsonObject(with: Data(resultJSON.utf8)) as? [String: Any] else { return }
        func number(_ v: Any?) -> Double? {
            guard let n = v as? NSNumber else { return nil }
            let d = n.doubleValue
            return d.isFinite ? d : nil
        }
        // The model the job kept (`final`, chosen on validation); results from before the chooser have only `afterFineTune`.
        if let kept = (o["final"] ?? o["afterFineTune"]) as? [String: Any], let summary = o["summary"] as? [String: Any] {
            dice = number(kept["dice"])
            parameters = number(summary["parametersAfter"])
            flops = number(summary["flopsAfter"])
            recovery = number(o["diceRecoveryPercent"]).map { $0 / 100 }
        } else if let test = o["test"] as? [String: Any] {
            dice = number(test["dice"])
            parameters = number(o["parameters"])
            flops = number(o["forwardFLOPsPerImage"])
        }
    }
}

enum SpecLeaves {
    /// Keys that name jobs or files, not settings: never grid axes.
    static let ignored: Set<String> = ["job", "baselineJob", "baselineOrigin"]

    /// Flattens a spec JSON object into its leaves ("a.b" -> value). Arrays and long texts are skipped.
    static func flatten(_ json: String) -> [String: Setting] {
        guard let o = try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any] else { return [:] }
        var out: [String: Setting] = [:]
        func walk(_ value: Any, _ path: String) {
            if let d = value as? [String: Any] {
                for (k, v) in d where !ignored.contains(k) { walk(v, path.isEmpty ? k : path + "." + k) }
            } else if let n = value as? NSNumber {
                if n.doubleValue.isFinite { out[path] = .number(n.doubleValue) }
            } else if let s = value as? String, s.count <= 40 {
                out[path] = .text(s)
            }
        }
        walk(o, "")
        return out
    }
}

/// A JSON value or JSON's null.
func orNull<T>(_ value: T?) -> Any { value.map { $0 as Any } ?? NSNull() }
