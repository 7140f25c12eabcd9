//! The host this process runs on, as lease holders and run owners name it.

/// `$HOSTNAME` (the pod name in Kubernetes), else the kernel's host name; `None` when neither
/// gives a name.
pub fn name() -> Option<String> {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|h| h.trim().to_string())
        })
        .filter(|h| !h.is_empty())
}
