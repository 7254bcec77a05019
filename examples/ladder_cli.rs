//! `ladder`: the ladder diagram of a TCP connection in a capture file
//! (pcap or pcapng, of any stacks: tcpdump's, tshark's, utcp's `--pcap`),
//! as the `echo` demo draws it: segments between the client's and the
//! server's columns, flags, sequence numbers relative to each side's ISN
//! (x, x+1, y, y+1; `--absolute` for the numbers themselves), and both
//! sides' states as the segments imply them.
//!
//! ```text
//! ladder FILE.pcap [--stream N] [--absolute]
//! ```

use clap::Parser;
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(
    name = "ladder",
    about = "the ladder diagram of a TCP connection in a capture"
)]
struct Cli {
    /// The capture (pcap or pcapng).
    file: std::path::PathBuf,
    /// Which TCP connection, numbered by first appearance from 0 (as
    /// tshark's `tcp.stream`).
    #[arg(long, default_value_t = 0)]
    stream: usize,
    /// Write sequence numbers as they are, not relative to the ISNs.
    #[arg(long)]
    absolute: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let run = || -> std::io::Result<usize> {
        let f = std::fs::File::open(&cli.file)
            .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", cli.file.display())))?;
        let packets = utcp_examples::pcap_ladder::read_capture(std::io::BufReader::new(f))?;
        utcp_examples::pcap_ladder::print(packets, cli.stream, !cli.absolute)
    };
    match run() {
        Ok(n) => {
            println!("(stream {} of {n})", cli.stream);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("ladder: {e}");
            ExitCode::FAILURE
        }
    }
}
