import Foundation

/// A targeted search's bracket for a live view: the candidates, every probe with its state and
/// recovery, and the answer so far. Replayed from job states and results, as `status` does.
public struct SearchBracket: Codable, Sendable, Equatable {
    public var name: String
    public var method: String
    public var target: Double
    public var candidates: [Double]
    public var probes: [Probe]
    public var answer: TargetSearch.Answer
    public var sentence: String

    public struct Probe: Codable, Sendable, Equatable {
        public var job: String
        public var value: Double
        public var state: String
        /// Dice recovery as a fraction (done probes with a number only).
        public var recovery: Double?
    }

    /// The brackets of the searches the state dir's sweep defines (none: empty), given its jobs'
    /// states and result JSON (nil for jobs not done).
    public static func load(store: SweepStore, jobs: [(id: String, state: JobState, result: String?)]) throws -> [SearchBracket] {
        guard let text = try store.meta(Coordinator.searchesMetaKey),
              let definitions = try? JSONDecoder().decode([SearchDefinition].self, from: Data(text.utf8)) else { return [] }
        let states = jobs.map { (id: $0.id, state: $0.state, recovery: Coordinator.recovery($0.result)) }
        return definitions.map { d in
            let answer = d.replay(states).answer
            let probes = states.compactMap { j -> Probe? in
                guard let i = d.index(ofJob: j.id) else { return nil }
                return Probe(job: j.id, value: d.candidates[i], state: j.state.rawValue, recovery: j.recovery)
            }
            return SearchBracket(name: d.name, method: d.method, target: d.target, candidates: d.candidates, probes: probes, answer: answer,
                                 sentence: answer.sentence(search: d.name, method: d.method, target: d.target))
        }
    }
}
