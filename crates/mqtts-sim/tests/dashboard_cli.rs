//! `mqtts-sim dashboard` refuses unsafe or bad options before it connects or listens, naming
//! the option.

use std::process::Command;

fn dashboard(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_mqtts-sim"))
        .arg("dashboard")
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn non_loopback_needs_a_token_and_bad_options_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.crt");
    std::fs::write(&ca, "not used before the checks below").unwrap();
    let config = dir.path().join("platform.toml");
    std::fs::write(
        &config,
        format!(
            "profile = \"self-hosted\"\nbroker_host = \"localhost\"\nbroker_port = 8883\n\
             ca_file = \"{}\"\n",
            ca.display()
        ),
    )
    .unwrap();
    let config = config.to_str().unwrap();

    let (code, err) = dashboard(&["--config", config, "--listen", "0.0.0.0:0"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("`--listen`") && err.contains("--token-file"),
        "{err}"
    );

    let short = dir.path().join("short.token");
    std::fs::write(&short, "abc\n").unwrap();
    let (code, err) = dashboard(&[
        "--config",
        config,
        "--listen",
        "0.0.0.0:0",
        "--token-file",
        short.to_str().unwrap(),
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("`--token-file`"), "{err}");
    assert!(!err.contains("abc"), "the token was printed: {err}");

    let (code, err) = dashboard(&["--config", config, "--listen", "nowhere"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--listen"), "{err}");

    let (code, err) = dashboard(&["--listen", "127.0.0.1:0"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--config"), "{err}");
}
