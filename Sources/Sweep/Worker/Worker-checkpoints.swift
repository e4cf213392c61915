import Basics
import CSupport
import Foundation

/// Checkpoints of train and fine-tune jobs: the child writes one file per epoch into its work dir
/// and says so (`ChildCheckpoint`, hashed in the child); the worker uploads the newest with PUT at
/// most once every `checkpointSeconds` (from JOB) and always when it is stopping (SIGTERM, Slurm
/// preemption), then names it in CHECKPOINT. Files the coordinator no longer needs are deleted.
extension Worker {
    /// Longest a stopping worker waits for its checkpoint uploads before it hands its jobs back:
    /// below Slurm's default KillWait (30 s) between SIGTERM and SIGKILL.
    static let stopUploadSeconds = 20.0

    func checkpointWritten(_ ref: JobRef, _ job: ActiveJob, _ c: ChildCheckpoint) {
        if let older = job.newestCheckpoint, older.path != job.uploadingCheckpoint?.path, older.path != c.path { unlink(older.path) }
        job.newestCheckpoint = c
        maybeUploadCheckpoint(ref, job)
    }

    /// Starts uploading the job's newest checkpoint when the coordinator lacks it, no upload of
    /// the job's is under way, and the interval has passed (or the worker is stopping).
    func maybeUploadCheckpoint(_ ref: JobRef, _ job: ActiveJob) {
        guard welcomed, let interval = job.header.checkpointSeconds, let c = job.newestCheckpoint,
              c.epoch > job.sentCheckpointEpoch, job.uploadingCheckpoint == nil else { return }
        let now = monotonicSeconds()
        guard csupport_stop_requested() != 0 || now - job.lastCheckpointUpload >= interval else { return }
        job.uploadingCheckpoint = c
        job.lastCheckpointUpload = now
        if uploadedThisConnection.contains(c.hash) { return checkpointUploaded(c.hash) }
        startUpload(JobOutput(file: "\(ref.job) checkpoint (epoch \(c.epoch))", path: c.path, hash: c.hash, size: c.size), for: ref)
    }

    /// The coordinator stored `hash`: name it as the checkpoint of the job(s) that uploaded it.
    func checkpointUploaded(_ hash: String) {
        for (ref, job) in active where job.uploadingCheckpoint?.hash == hash {
            let c = job.uploadingCheckpoint!
            job.uploadingCheckpoint = nil
            job.sentCheckpointEpoch = c.epoch
            send(WireMessage(.checkpoint, CheckpointHeader(job: ref.job, attempt: ref.attempt, epoch: c.epoch, hash: c.hash, size: c.size)))
            Log.info("\(ref.job) attempt \(ref.attempt): checkpoint after epoch \(c.epoch) uploaded")
            if job.newestCheckpoint?.path != c.path { unlink(c.path) }
            maybeUploadCheckpoint(ref, job)
        }
    }

    /// The upload failed (or the connection was replaced): a later epoch, or the stop, tries again.
    func checkpointUploadFailed(_ hash: String) {
        for job in active.values where job.uploadingCheckpoint?.hash == hash { job.uploadingCheckpoint = nil }
    }

    /// Stopping: upload each job's newest checkpoint the coordinator lacks, waiting at most
    /// `stopUploadSeconds`; the CHECKPOINTs go out before the handbacks (one pipe keeps order).
    func uploadCheckpointsBeforeStopping() {
        guard welcomed, let d = dealer else { return }
        for (ref, job) in active { maybeUploadCheckpoint(ref, job) }
        let end = monotonicSeconds() + Worker.stopUploadSeconds
        while welcomed, monotonicSeconds() < end, active.values.contains(where: { $0.uploadingCheckpoint != nil }) {
            if let r = try? ZMQPoll.readable([d], timeoutMs: 50), r[0] {
                while let f = try? d.receive(dontWait: true) { handleCoordinator(f) }
            }
        }
    }
}
