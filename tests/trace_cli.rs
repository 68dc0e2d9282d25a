//! `shop-trace`: the span collector and waterfall behind `cargo xtask up`
//! and `cargo xtask trace` (tests/otlp.rs does the work).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use shop_tests::otlp;

#[derive(Parser)]
#[command(name = "shop-trace", about = "Collects the shop's spans (OTLP/HTTP) and draws a checkout's trace")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Receive spans on ADDR (`POST /v1/traces`) and append them to FILE until stopped.
    Collect {
        #[arg(long, default_value = "127.0.0.1:4318")]
        listen: String,
        #[arg(long, value_name = "FILE")]
        keep: PathBuf,
        /// Decode and keep nothing: only count requests and bytes into FILE
        /// (for benchmarks, so the collector costs next to nothing).
        #[arg(long)]
        count_only: bool,
    },
    /// Draw the traces of a checkout (`chk_…`, or any correlation id) or a trace id.
    Show {
        id: String,
        #[arg(long, value_name = "FILE")]
        from: PathBuf,
    },
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Collect { listen, keep, count_only } => match otlp::Collector::start(&listen, if count_only { otlp::Keep::Count(keep) } else { otlp::Keep::File(keep) }) {
            Ok(collector) => {
                println!("Collecting spans at {}/v1/traces", collector.endpoint());
                loop {
                    std::thread::park();
                }
            }
            Err(e) => {
                eprintln!("shop-trace: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Show { id, from } => {
            let spans = match otlp::read_kept(&from) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("shop-trace: {e}");
                    return ExitCode::FAILURE;
                }
            };
            let mut traces = otlp::traces_of(&spans, &id);
            if traces.is_empty() && spans.iter().any(|s| s.trace_id == id) {
                traces.push(id.clone());
            }
            if traces.is_empty() {
                eprintln!("shop-trace: no span in {} names `{id}` ({} spans kept)", from.display(), spans.len());
                return ExitCode::FAILURE;
            }
            for trace in traces {
                print!("{}", otlp::waterfall(&spans, &trace));
            }
            ExitCode::SUCCESS
        }
    }
}
