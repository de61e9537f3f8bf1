//! Building packetdrill: a patched copy of `../shared/packetdrill`'s tool source in the
//! target directory (the original stays untouched), rebuilt only when the patch changes.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The patch applied to the copy: `close` of script sockets at the end and `TCP_INFO` of
/// `%{ }%` blocks go through the .so, and shell commands (sysctl setup meant for the host
/// kernel) are skipped in `--so_filename` mode.
const PATCH: &str = include_str!("../../packetdrill.patch");

/// Why packetdrill cannot be built here, if a tool is missing.
pub(crate) fn missing_tools() -> Option<String> {
    let missing: Vec<_> = ["bison", "flex", "make", "cc", "patch"]
        .into_iter()
        .filter(|t| {
            let probe = Command::new("sh")
                .args(["-c", &format!("command -v {t}")])
                .stdout(Stdio::null())
                .status();
            !probe.is_ok_and(|s| s.success())
        })
        .collect();
    (!missing.is_empty()).then(|| format!("missing {} (see .ci/install-deps)", missing.join(", ")))
}

fn run(cmd: &mut Command, what: &str) -> Result<(), String> {
    let out = cmd.output().map_err(|e| format!("{what}: {e}"))?;
    if out.status.success() {
        return Ok(());
    }
    let tail: String =
        String::from_utf8_lossy(&out.stderr).lines().rev().take(15).collect::<Vec<_>>().join("\n");
    Err(format!("{what} failed ({}):\n{tail}", out.status))
}

/// Build (or reuse) packetdrill under `target/packetdrill-build`; returns the binary.
pub(crate) fn packetdrill(shared: &Path, target: &Path) -> Result<PathBuf, String> {
    let src = shared.join("packetdrill/gtests/net/packetdrill");
    let dir = target.join("packetdrill-build");
    let bin = dir.join("packetdrill");
    let stamp = dir.join(".conformance-patch");
    if bin.exists() && fs::read_to_string(&stamp).is_ok_and(|s| s == PATCH) {
        return Ok(bin);
    }
    eprintln!("conformance: building packetdrill from {} in {}", src.display(), dir.display());
    if dir.exists() {
        fs::remove_dir_all(&dir).map_err(|e| format!("clean {}: {e}", dir.display()))?;
    }
    fs::create_dir_all(target).map_err(|e| e.to_string())?;
    run(Command::new("cp").arg("-r").arg(&src).arg(&dir), "copy packetdrill")?;
    fs::write(dir.join("conformance.patch"), PATCH).map_err(|e| e.to_string())?;
    run(
        Command::new("patch").args(["-p1", "-i", "conformance.patch"]).current_dir(&dir),
        "patch packetdrill",
    )?;
    run(Command::new("./configure").current_dir(&dir), "configure packetdrill")?;
    run(Command::new("make").arg("packetdrill").current_dir(&dir), "make packetdrill")?;
    fs::write(&stamp, PATCH).map_err(|e| e.to_string())?;
    Ok(bin)
}
