//! The example binaries against the kernel, run under `ip netns exec` as a
//! user would: echo-server (TUN and raw, daytime, SIGTERM) and echo-client.

use super::*;
use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use utcp_integration_tests::netns::Netns;
use utcp_integration_tests::{example_bin, pattern};

/// Kills the child on drop (a failing test leaves no server behind).
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `echo-server ARGS` in `ns` and waits for its "serving" line.
fn start_server(ns: &Netns, args: &[&str]) -> (Running, String) {
    let bin = example_bin("echo-server");
    let mut child = ns
        .command(bin)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn echo-server");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        if let Some(Ok(l)) = lines.next() {
            tx.send(l).ok();
        }
        for _ in lines {}
    });
    let line = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("echo-server printed no line within 10 s");
    (Running(child), line)
}

fn sigterm_exits_0(mut server: Running) {
    let pid = server.0.id() as i32;
    // SAFETY: sending a signal to our own child process.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    // The grace period is 1 s; the bound only catches a server that hangs.
    let end = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = server.0.try_wait().unwrap() {
            assert!(
                status.success(),
                "echo-server exited with {status} after SIGTERM"
            );
            return;
        }
        assert!(
            Instant::now() < end,
            "echo-server did not exit within 20 s of SIGTERM (hung)"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn echo_server_over_tun_echoes_serves_daytime_and_exits_0_on_sigterm() {
    if !can_run(
        "echo_server_over_tun_echoes_serves_daytime_and_exits_0_on_sigterm",
        Link::Tun,
        &["ss"],
    ) {
        return;
    }
    let _serial = serial();
    let ns = Netns::new("cli").expect("namespace");
    let (server, line) = start_server(
        &ns,
        &[
            "--tun",
            "utun0",
            "--addr",
            "10.77.0.2",
            "--tun-host-addr",
            "10.77.0.1/24",
            "--port",
            "7",
            "--daytime-port",
            "13",
            "--offload",
            offloads().arg(),
        ],
    );
    assert!(line.contains("10.77.0.2:7"), "{line}");
    // The serving line says which offloads the device runs with.
    assert!(
        line.contains(&format!("(offload {}", offloads().arg())),
        "{line}"
    );
    let data = pattern(1 << 20, 77);
    let expect = data.clone();
    let back = ns
        .spawn(move || kernel_echo_client(sa("10.77.0.2:7"), data))
        .join()
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(back == expect);
    // Daytime: one line, then the server closes first.
    let (text, port) = ns
        .spawn(|| -> io::Result<(String, u16)> {
            let s = KTcpStream::connect_timeout(&sa("10.77.0.2:13"), Duration::from_secs(5))?;
            s.set_read_timeout(Some(Duration::from_secs(5)))?;
            let port = s.local_addr()?.port();
            let mut text = String::new();
            (&s).read_to_string(&mut text)?; // EOF: the server's FIN came first
            Ok((text, port))
        })
        .join()
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(text.lines().count(), 1, "{text:?}");
    assert!(
        text.ends_with("\r\n") && text.contains('T') && text.contains(':'),
        "{text:?}"
    );
    // The kernel side closed second: no TIME_WAIT here (the server holds it).
    let tuple = format!("10.77.0.1:{port}");
    assert!(
        !ss_lines(&ns, &tuple)
            .iter()
            .any(|l| l.starts_with("TIME-WAIT"))
    );
    // Another port gets RST.
    let r = ns
        .spawn(|| {
            KTcpStream::connect_timeout(&sa("10.77.0.2:9"), Duration::from_secs(5)).map(|_| ())
        })
        .join()
        .unwrap()
        .unwrap();
    assert_eq!(r.unwrap_err().kind(), io::ErrorKind::ConnectionRefused);
    sigterm_exits_0(server);
}

#[test]
fn echo_server_raw_sink_and_echo_client_raw() {
    if !can_run("echo_server_raw_sink_and_echo_client_raw", Link::Raw, &[]) {
        return;
    }
    let _serial = serial();
    let net = Net::new(Link::Raw, 1500);
    let utcp_ns = net.utcp_ns();
    // echo-server in sink mode on the raw socket.
    let (server, line) = start_server(
        utcp_ns,
        &[
            "--iface",
            "vb",
            "--addr",
            "10.78.0.2/24",
            "--mode",
            "sink",
            "--offload",
            offloads().arg(),
        ],
    );
    assert!(line.contains("10.78.0.2:7"), "{line}");
    let sent = ns_sink_client(&net.kernel, 256 * 1024);
    assert_eq!(sent, 256 * 1024);
    sigterm_exits_0(server);

    // echo-client on the raw socket to a kernel echo server.
    let (bound_tx, bound_rx) = std::sync::mpsc::channel();
    let kernel = net.kernel.spawn(move || {
        let (_, h) = kernel_echo_server(sa("10.78.0.1:7007"), 1, Duration::from_secs(30))?;
        bound_tx.send(()).ok();
        h.join()
            .map_err(|_| io::Error::other("echo server panicked"))?
    });
    bound_rx.recv_timeout(Duration::from_secs(10)).unwrap();
    let bin = example_bin("echo-client");
    let mut child = utcp_ns
        .command(bin)
        .args([
            "--iface",
            "vb",
            "--addr",
            "10.78.0.2/24",
            "--connect",
            "10.78.0.1:7007",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let data = pattern(300_000, 3);
    let mut stdin = child.stdin.take().unwrap();
    let input = data.clone();
    let feeder = std::thread::spawn(move || {
        stdin.write_all(&input).ok();
    });
    let out = child.wait_with_output().unwrap();
    feeder.join().unwrap();
    assert!(
        out.status.success(),
        "echo-client: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stdout == data,
        "echo-client printed {} bytes, sent {}",
        out.stdout.len(),
        data.len()
    );
    assert_eq!(kernel.join().unwrap().unwrap().unwrap(), 1);
}

/// Sends `n` bytes to the sink from the kernel, then reads until the server's
/// FIN (it closes after ours). Returns the bytes sent.
fn ns_sink_client(ns: &Netns, n: usize) -> usize {
    ns.spawn(move || -> io::Result<usize> {
        let s = KTcpStream::connect_timeout(&sa("10.78.0.2:7"), Duration::from_secs(5))?;
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        (&s).write_all(&vec![7u8; n])?;
        s.shutdown(Shutdown::Write)?;
        let mut rest = Vec::new();
        (&s).read_to_end(&mut rest)?;
        assert!(rest.is_empty(), "a sink sends nothing");
        Ok(n)
    })
    .join()
    .unwrap()
    .unwrap()
    .unwrap()
}

#[test]
fn without_permission_the_examples_say_so_in_one_line() {
    let test = "without_permission_the_examples_say_so_in_one_line";
    let mut needs = NETNS.to_vec();
    needs.push(Need::Tool("setpriv"));
    if !utcp_testenv::require(test, &needs) {
        return;
    }
    let ns = Netns::new("perm").expect("namespace");
    ns.ip(&["link", "add", "v0", "type", "veth", "peer", "name", "v1"])
        .expect("veth pair");
    ns.ip(&["link", "set", "v0", "up"]).expect("veth up");
    let bin = example_bin("echo-server");
    for (args, needle) in [
        (
            vec!["--tun", "utun0", "--addr", "10.77.0.2"],
            "CAP_NET_ADMIN",
        ),
        (
            vec!["--iface", "v0", "--addr", "10.77.0.2/24"],
            "CAP_NET_RAW",
        ),
    ] {
        // As an unprivileged user, inside the test's own namespace.
        let out = ns
            .command("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(&bin)
            .args(&args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}

/// Starts `echo-server ARGS` in `ns`; every stdout line and every stderr
/// line arrive on the two receivers (the first stdout line is the
/// "serving" line).
fn start_server_lines(
    ns: &Netns,
    args: &[&str],
) -> (
    Running,
    std::sync::mpsc::Receiver<String>,
    std::sync::mpsc::Receiver<String>,
) {
    let bin = example_bin("echo-server");
    let mut child = ns
        .command(bin)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn echo-server");
    let forward = |r: Box<dyn io::Read + Send>| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for l in BufReader::new(r).lines().map_while(Result::ok) {
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        rx
    };
    let out = forward(Box::new(child.stdout.take().unwrap()));
    let err = forward(Box::new(child.stderr.take().unwrap()));
    (Running(child), out, err)
}

#[test]
fn echo_server_stats_on_sigusr1_and_exit_1_naming_the_device_when_its_tun_is_deleted() {
    if !can_run(
        "echo_server_stats_on_sigusr1_and_exit_1_naming_the_device_when_its_tun_is_deleted",
        Link::Tun,
        &[],
    ) {
        return;
    }
    let _serial = serial();
    let ns = Netns::new("clidel").expect("namespace");
    let (mut server, out, err) = start_server_lines(
        &ns,
        &[
            "--tun",
            "udel0",
            "--addr",
            "10.78.0.2",
            "--tun-host-addr",
            "10.78.0.1/24",
            "--port",
            "7",
            "--stats",
        ],
    );
    let line = out
        .recv_timeout(Duration::from_secs(10))
        .expect("echo-server printed no line within 10 s");
    assert!(line.contains("10.78.0.2:7"), "{line}");
    // Two kernel connections stay open while the table is printed.
    let conns: Vec<KTcpStream> = ns
        .spawn(|| -> io::Result<Vec<KTcpStream>> {
            let mut v = Vec::new();
            for _ in 0..2 {
                let mut s =
                    KTcpStream::connect_timeout(&sa("10.78.0.2:7"), Duration::from_secs(5))?;
                s.set_read_timeout(Some(Duration::from_secs(5)))?;
                s.write_all(b"ping")?;
                let mut b = [0u8; 4];
                s.read_exact(&mut b)?;
                v.push(s);
            }
            Ok(v)
        })
        .join()
        .unwrap()
        .unwrap()
        .unwrap();
    let peers: Vec<String> = conns
        .iter()
        .map(|s| s.local_addr().unwrap().to_string())
        .collect();
    let pid = server.0.id() as i32;
    // SAFETY: sending a signal to our own child process.
    unsafe { libc::kill(pid, libc::SIGUSR1) };
    // The table: the listener, one ESTABLISHED row per connection (its
    // peer the kernel socket's address), then the MIB line.
    let mut table = Vec::new();
    let end = Instant::now() + Duration::from_secs(10);
    while Instant::now() < end {
        match out.recv_timeout(Duration::from_millis(200)) {
            Ok(l) => {
                let done = l.starts_with("Tcp:");
                table.push(l);
                if done {
                    break;
                }
            }
            Err(_) => continue,
        }
    }
    println!("{}", table.join("\n"));
    assert!(
        table.last().is_some_and(|l| l.starts_with("Tcp:")),
        "{table:?}"
    );
    assert!(
        table
            .iter()
            .any(|l| l.starts_with("LISTEN") && l.contains("10.78.0.2:7"))
    );
    let established: Vec<&String> = table
        .iter()
        .filter(|l| l.starts_with("Established"))
        .collect();
    assert_eq!(established.len(), 2, "{table:?}");
    for p in &peers {
        assert!(
            established
                .iter()
                .any(|l| l.contains("10.78.0.2:7") && l.contains(p.as_str())),
            "no row for {p}: {table:?}"
        );
    }
    let mib = table.last().unwrap();
    assert!(
        mib.contains("PassiveOpens 2") && mib.contains("CurrEstab 2"),
        "{mib}"
    );
    // The TUN device goes away under the server: it exits 1 with one line
    // naming the device's error, well within the bound (which only catches
    // a server that hangs).
    let deleted = Instant::now();
    ns.ip(&["link", "del", "udel0"]).expect("ip link del");
    let end = deleted + Duration::from_secs(20);
    let status = loop {
        if let Some(st) = server.0.try_wait().unwrap() {
            break st;
        }
        assert!(Instant::now() < end, "echo-server did not exit within 20 s");
        std::thread::sleep(Duration::from_millis(20));
    };
    let took = deleted.elapsed();
    let lines: Vec<String> = err.try_iter().collect();
    println!("exit {status} after {took:?}: {lines:?}");
    assert_eq!(status.code(), Some(1), "{lines:?}");
    let errors: Vec<&String> = lines.iter().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(errors.len(), 1, "{lines:?}");
    assert!(errors[0].starts_with("echo-server:"), "{errors:?}");
    assert!(errors[0].contains("udel0"), "{errors:?}");
    drop(conns);
}

#[test]
fn ladder_draws_a_kernel_to_kernel_capture_with_both_sides_states() {
    if !can_run(
        "ladder_draws_a_kernel_to_kernel_capture_with_both_sides_states",
        Link::Tun,
        &["tcpdump"],
    ) {
        return;
    }
    let ns = Netns::new("ladder").expect("namespace");
    let dir = utcp_integration_tests::TempDir::new("ladder");
    let file = dir.join("k2k.pcap");
    // tcpdump on the namespace's loopback, packet-buffered.
    let mut dump = Running(
        ns.command("tcpdump")
            .args(["-i", "lo", "-U", "--immediate-mode", "-n", "-w"])
            .arg(&file)
            .args(["tcp", "port", "7070"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn tcpdump"),
    );
    let stderr = dump.0.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for l in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(l);
        }
    });
    let ready = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("tcpdump said nothing");
    assert!(ready.contains("listening on"), "{ready}");
    // A kernel client and server: connect, 5 bytes each way, the client
    // closes first.
    ns.spawn(|| -> io::Result<()> {
        let l = KTcpListener::bind("127.0.0.1:7070")?;
        let server = std::thread::spawn(move || -> io::Result<()> {
            let (mut s, _) = l.accept()?;
            let mut b = [0u8; 5];
            s.read_exact(&mut b)?;
            s.write_all(&b)?;
            let mut rest = Vec::new();
            s.read_to_end(&mut rest)?; // the client's FIN
            Ok(())
        });
        let mut c = KTcpStream::connect("127.0.0.1:7070")?;
        c.write_all(b"hello")?;
        let mut b = [0u8; 5];
        c.read_exact(&mut b)?;
        drop(c);
        server.join().unwrap()
    })
    .join()
    .unwrap()
    .unwrap()
    .unwrap();
    // Every segment written (-U), then tcpdump stops on SIGINT.
    std::thread::sleep(Duration::from_millis(300));
    // SAFETY: signalling our own child.
    unsafe { libc::kill(dump.0.id() as i32, libc::SIGINT) };
    let end = Instant::now() + Duration::from_secs(10);
    while dump.0.try_wait().unwrap().is_none() {
        assert!(Instant::now() < end, "tcpdump did not stop");
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = std::process::Command::new(example_bin("ladder"))
        .arg(&file)
        .output()
        .expect("run ladder");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    println!("{text}");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Client transitions sit at the left, the server's far right.
    let states: Vec<(bool, String)> = text
        .lines()
        .filter_map(|l| {
            let i = l.find('[')?;
            let server = i > 40;
            Some((server, l[i..].trim().to_string()))
        })
        .collect();
    let client: Vec<&str> = states
        .iter()
        .filter(|s| !s.0)
        .map(|s| s.1.as_str())
        .collect();
    let server: Vec<&str> = states
        .iter()
        .filter(|s| s.0)
        .map(|s| s.1.as_str())
        .collect();
    assert_eq!(
        &client[..2],
        ["[CLOSED -> SYN_SENT]", "[SYN_SENT -> ESTABLISHED]"],
        "{text}"
    );
    assert!(client.contains(&"[ESTABLISHED -> FIN_WAIT_1]"), "{text}");
    assert_eq!(client.last(), Some(&"[FIN_WAIT_2 -> TIME_WAIT]"), "{text}");
    assert_eq!(
        server,
        [
            "[LISTEN -> SYN_RECEIVED]",
            "[SYN_RECEIVED -> ESTABLISHED]",
            "[ESTABLISHED -> CLOSE_WAIT]",
            "[CLOSE_WAIT -> LAST_ACK]",
            "[LAST_ACK -> CLOSED]"
        ],
        "{text}"
    );
    // The handshake in the seed's numbers.
    for s in [
        "SYN seq=x ",
        "SYN|ACK seq=y ack=x+1",
        "ACK seq=x+1 ack=y+1",
        "len=5",
    ] {
        assert!(text.contains(s), "no {s:?} in\n{text}");
    }
    assert!(text.contains("(stream 0 of 1)"), "{text}");
    // A stream the capture does not hold: a clear error.
    let out = std::process::Command::new(example_bin("ladder"))
        .arg(&file)
        .args(["--stream", "3"])
        .output()
        .expect("run ladder");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("1 TCP stream") && err.lines().count() == 1,
        "{err}"
    );
}

#[test]
fn echo_server_exits_0_on_sigterm_during_a_transfer() {
    if !can_run(
        "echo_server_exits_0_on_sigterm_during_a_transfer",
        Link::Tun,
        &[],
    ) {
        return;
    }
    let _serial = serial();
    let ns = Netns::new("cliterm").expect("namespace");
    let (server, line) = start_server(
        &ns,
        &[
            "--tun",
            "uterm0",
            "--addr",
            "10.79.0.2",
            "--tun-host-addr",
            "10.79.0.1/24",
            "--port",
            "7",
            "--mode",
            "sink",
        ],
    );
    assert!(line.contains("10.79.0.2:7"), "{line}");
    // A kernel client sends without end until the server goes away.
    let sent = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let s2 = sent.clone();
    let client = ns.spawn(move || -> io::Result<()> {
        let mut s = KTcpStream::connect_timeout(&sa("10.79.0.2:7"), Duration::from_secs(5))?;
        s.set_write_timeout(Some(Duration::from_secs(30)))?;
        let chunk = vec![0x5au8; 64 * 1024];
        let end = Instant::now() + Duration::from_secs(60);
        while Instant::now() < end {
            match s.write(&chunk) {
                Ok(n) => {
                    s2.fetch_add(n as u64, Ordering::Relaxed);
                }
                Err(_) => return Ok(()), // reset or closed by the server's shutdown
            }
        }
        Ok(())
    });
    // Mid-transfer: some megabytes in.
    let end = Instant::now() + Duration::from_secs(20);
    while sent.load(Ordering::Relaxed) < 8 << 20 {
        assert!(Instant::now() < end, "the transfer did not start");
        std::thread::sleep(Duration::from_millis(10));
    }
    sigterm_exits_0(server);
    client.join().unwrap().unwrap().unwrap();
}

/// Pins the calling thread (or, in `pre_exec`, the child) to CPU 0.
fn pin_to_cpu0() -> io::Result<()> {
    // SAFETY: a zeroed `cpu_set_t` is an empty set, CPU_SET writes inside
    // it, and sched_setaffinity only reads it.
    let rc = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(0, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set)
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Starts `echo-server ARGS` in `ns` on CPU 0 and sends it SIGTERM from a
/// thread on CPU 0 the moment the ready line's newline arrives; returns
/// the line and how the server ended (bounded at 20 s).
fn sigterm_on_ready(ns: &Netns, args: &[&str]) -> (String, std::process::ExitStatus) {
    use std::io::Read;
    use std::os::unix::process::CommandExt;
    let mut cmd = ns.command(example_bin("echo-server"));
    cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::null());
    // SAFETY: the closure makes one async-signal-safe system call.
    unsafe { cmd.pre_exec(pin_to_cpu0) };
    let mut child = Running(cmd.spawn().expect("spawn echo-server"));
    let pid = child.0.id() as i32;
    let mut out = child.0.stdout.take().unwrap();
    // On the server's CPU, the woken reader may run (and signal) before
    // the server's next instruction.
    let reader = std::thread::spawn(move || -> String {
        pin_to_cpu0().expect("pin the reader");
        let mut line = Vec::new();
        let mut b = [0u8; 1];
        while let Ok(1) = out.read(&mut b) {
            if b[0] == b'\n' {
                // SAFETY: sending a signal to our own child process.
                unsafe { libc::kill(pid, libc::SIGTERM) };
                break;
            }
            line.push(b[0]);
        }
        std::io::copy(&mut out, &mut std::io::sink()).ok();
        String::from_utf8_lossy(&line).into_owned()
    });
    let end = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < end, "echo-server still running 20 s on");
        std::thread::sleep(Duration::from_millis(5));
    };
    (reader.join().unwrap(), status)
}

/// A SIGTERM sent the moment the ready line is read is the server's: its
/// handlers are registered before it prints the line, in utcp's mode and
/// in `--kernel` mode. (They were registered on the first poll of the task
/// that awaits them, after the line: a signal in between ended the process
/// with the default action, as a clean-clone CI run once saw. Server and
/// reader share one CPU so that the reader runs as soon as it is woken.)
#[test]
fn echo_server_exits_0_on_a_sigterm_sent_as_soon_as_it_is_ready() {
    if !can_run(
        "echo_server_exits_0_on_a_sigterm_sent_as_soon_as_it_is_ready",
        Link::Tun,
        &[],
    ) {
        return;
    }
    let _serial = serial();
    let ns = Netns::new("cliready").expect("namespace");
    ns.ip(&["link", "set", "lo", "up"]).expect("lo up");
    let utcp = [
        "--tun",
        "uready0",
        "--addr",
        "10.79.1.2",
        "--tun-host-addr",
        "10.79.1.1/24",
        "--port",
        "7",
    ];
    let kernel = ["--kernel", "--addr", "127.0.0.1", "--port", "7"];
    for round in 0..5 {
        for (args, addr) in [(&utcp[..], "10.79.1.2:7"), (&kernel[..], "127.0.0.1:7")] {
            let (line, status) = sigterm_on_ready(&ns, args);
            assert!(line.contains(addr), "round {round}: {line}");
            assert!(
                status.success(),
                "round {round}, {addr}: echo-server exited with {status} on a SIGTERM sent on its ready line"
            );
        }
    }
}
