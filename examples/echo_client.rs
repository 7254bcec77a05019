//! `echo-client`: sends stdin to a TCP server through utcp and prints what
//! comes back.
//!
//! ```text
//! echo-client --tun utun0 --addr 10.0.0.2 --tun-host-addr 10.0.0.1/24 --connect 10.0.0.1:7 < file
//! echo-client --iface veth1 --addr 10.0.0.2/24 --connect 10.0.0.1:7 < file
//! ```

use clap::Parser;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use utcp::{StackConfig, StackExt};
use utcp_examples::device::{DeviceArgs, init_logging, parse_args, run_main};

#[derive(Parser, Debug)]
#[command(
    name = "echo-client",
    about = "utcp client: stdin to a TCP server, the reply to stdout"
)]
struct Cli {
    #[command(flatten)]
    device: DeviceArgs,
    /// The server to connect to.
    #[arg(long, value_name = "IP:PORT")]
    connect: SocketAddr,
}

fn main() -> ExitCode {
    let cli: Cli = parse_args();
    init_logging();
    run_main("echo-client", run(cli))
}

async fn run(cli: Cli) -> std::io::Result<()> {
    let (stack, _) = cli.device.build(StackConfig::default())?;
    let stream = stack.connect(cli.connect).await?;
    let (mut r, mut w) = stream.into_split();
    let upload = tokio::spawn(async move {
        let mut stdin = tokio::io::stdin();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = stdin.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            w.write_all(&buf[..n]).await?;
        }
        w.shutdown().await?;
        std::io::Result::Ok(w)
    });
    let mut stdout = tokio::io::stdout();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = r.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        stdout.write_all(&buf[..n]).await?;
    }
    stdout.flush().await?;
    let _w = upload.await.map_err(std::io::Error::other)??;
    drop(r);
    drop(_w);
    // Let the close finish (our FIN acknowledged) before the stack goes.
    stack.shutdown(Duration::from_secs(1)).await;
    Ok(())
}
