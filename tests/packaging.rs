//! The systemd unit in `contrib/` is valid: `systemd-analyze verify`
//! accepts it, with its `ExecStart` pointed at the binary this build made.
//! Needs `systemd-analyze` (Debian's `systemd`): without it the test prints
//! a notice and passes, except under `CI=true`.

use std::path::PathBuf;
use std::process::Command;

fn systemd_analyze() -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("systemd-analyze"))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "systemd-analyze is missing; .ci/run installs Debian's systemd package"
        );
        eprintln!("notice: systemd-analyze not found; the unit file was not verified");
    }
    found
}

#[test]
fn the_systemd_unit_verifies() {
    let unit = include_str!("../contrib/cafe-server.service");
    assert!(unit.contains("ExecStart=/usr/local/bin/cafe-server"));
    assert!(
        unit.contains("LimitNOFILE="),
        "descriptors for the connection limit"
    );
    assert!(unit.contains("DynamicUser=yes"), "never root");
    let Some(analyze) = systemd_analyze() else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("cafe-unit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let path = dir.join("cafe-server.service");
    let built = env!("CARGO_BIN_EXE_cafe-server");
    std::fs::write(&path, unit.replace("/usr/local/bin/cafe-server", built)).expect("write unit");
    let out = Command::new(analyze)
        .arg("verify")
        .arg(&path)
        .output()
        .expect("systemd-analyze runs");
    let _ = std::fs::remove_dir_all(&dir);
    let complaints = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "systemd-analyze verify: {complaints}");
    // verify reports problems on stderr even when it exits 0; only lines
    // about this unit count (the host's own units may be odd).
    let ours: Vec<&str> = complaints
        .lines()
        .filter(|l| l.contains("cafe-server.service"))
        .collect();
    assert!(ours.is_empty(), "{ours:#?}");
}
