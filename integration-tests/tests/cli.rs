//! The example binaries' contracts that need no privileges.

use std::process::Command;
use std::time::Duration;
use utcp_integration_tests::{example_bin, output_within};

/// Catches a hung example, nothing slower: each run takes well under a second.
const HANG_BOUND: Duration = Duration::from_secs(120);

#[test]
fn echo_demo_prints_the_ladder_and_exits_0() {
    let out = output_within(&mut Command::new(example_bin("echo")), HANG_BOUND);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "echo failed: {text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for needle in [
        "[CLOSED -> SYN_SENT]",
        "SYN seq=",
        "SYN|ACK seq=",
        "[LISTEN -> SYN_RECEIVED]",
        "[SYN_SENT -> ESTABLISHED]",
        "[SYN_RECEIVED -> ESTABLISHED]",
        "[ESTABLISHED -> FIN_WAIT_1]",
        "[ESTABLISHED -> CLOSE_WAIT]",
        "[CLOSE_WAIT -> LAST_ACK]",
        "[FIN_WAIT_2 -> TIME_WAIT]",
        "[LAST_ACK -> CLOSED]",
        "[TIME_WAIT -> CLOSED]",
        "TIME_WAIT ended after 60",
        "OK: every byte came back",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
}

fn one_line_error(bin: &str, args: &[&str]) -> (i32, String) {
    let out = output_within(Command::new(example_bin(bin)).args(args), HANG_BOUND);
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    (out.status.code().unwrap_or(-1), err)
}

#[test]
fn bad_flags_give_one_line_and_a_nonzero_exit() {
    for (bin, args) in [
        ("echo-server", vec!["--bogus"]),
        ("echo-server", vec!["--port", "notaport"]),
        ("echo-server", vec!["--mode", "loud"]),
        ("echo-server", vec!["--tun", "x", "--iface", "y"]),
        ("echo-client", vec!["--connect", "nowhere"]),
        ("echo-server", vec!["--tun", "utcptest0"]),
        ("echo-server", vec![]),
        (
            "echo-client",
            vec![
                "--iface",
                "utcp-none0",
                "--addr",
                "10.1.2.3/33",
                "--connect",
                "10.1.2.4:7",
            ],
        ),
    ] {
        let (code, err) = one_line_error(bin, &args);
        assert_ne!(code, 0, "{bin} {args:?} succeeded");
        assert_eq!(
            err.trim_end().lines().count(),
            1,
            "{bin} {args:?}: not one line:\n{err}"
        );
        assert!(!err.contains("panicked"), "{bin} {args:?} panicked: {err}");
    }
}

#[test]
fn a_missing_interface_is_named_in_the_error() {
    let (code, err) = one_line_error(
        "echo-server",
        &["--iface", "utcp-none0", "--addr", "10.1.2.3/24"],
    );
    assert_ne!(code, 0);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("utcp-none0"), "{err}");
}

#[test]
fn handshake_example_shows_every_corner_case() {
    let out = output_within(&mut Command::new(example_bin("handshake")), HANG_BOUND);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "handshake failed: {text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for needle in [
        "== simultaneous-open",
        "[SYN_SENT -> SYN_RECEIVED]",
        "== simultaneous-close",
        "[FIN_WAIT_1 -> CLOSING]",
        "[CLOSING -> TIME_WAIT]",
        "== half-close",
        "client read \"still talking\" after its own FIN",
        "RST|ACK seq=0",
        "connection refused",
        " 1000.000  SYN seq=",
        "the echoed timestamp timed the retransmitted SYN",
        "connection reset by peer",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
}
