//! Logs to the console (stderr) and to `logs.log`, at the level `RUST_LOG` sets
//! (default `info`). Each line's target names the service that wrote it.
//!
//! A request never waits for a disk or a terminal: records are formatted on the
//! caller's thread and handed over a bounded channel to one writer thread, which
//! writes them to both places in batches, at most a few milliseconds behind.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::sync::OnceLock;
use std::sync::mpsc::{self, Receiver, SyncSender};

/// Lines waiting for the writer before callers have to wait for it.
const BACKLOG_LINES: usize = 64 * 1024;
/// How long the writer lets lines gather after writing a batch.
const GATHER: std::time::Duration = std::time::Duration::from_millis(5);

enum Message {
    Line(Vec<u8>),
    Flush(SyncSender<()>),
}

static WRITER: OnceLock<SyncSender<Message>> = OnceLock::new();

/// Starts logging to the console and to `<dir>/logs.log`, what `filter` selects
/// (env_logger's syntax: a level, or directives such as `info,actix_server=warn`).
pub fn init(dir: &Path, filter: &str) -> io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("logs.log"))?;
    let (sender, receiver) = mpsc::sync_channel(BACKLOG_LINES);
    std::thread::Builder::new()
        .name("log-writer".into())
        .spawn(move || write_lines(receiver, BufWriter::new(file)))?;
    let _ = WRITER.set(sender.clone());
    env_logger::Builder::new()
        .filter_module("actix_server", log::LevelFilter::Warn)
        .parse_filters(filter)
        .target(env_logger::Target::Pipe(Box::new(ChannelWriter(sender))))
        // Plain text, the layout of env_logger's default, without its styling pass.
        .format(|line, record| {
            let timestamp = line.timestamp();
            writeln!(
                line,
                "[{timestamp} {:<5} {}] {}",
                record.level(),
                record.target(),
                record.args()
            )
        })
        .try_init()
        .map_err(io::Error::other)
}

/// Waits until every line logged so far is written out.
pub fn flush() {
    if let Some(writer) = WRITER.get() {
        let (done, wait) = mpsc::sync_channel(1);
        if writer.send(Message::Flush(done)).is_ok() {
            let _ = wait.recv();
        }
    }
}

fn write_lines(receiver: Receiver<Message>, mut file: BufWriter<File>) {
    let mut console = BufWriter::new(io::stderr());
    while let Ok(mut message) = receiver.recv() {
        loop {
            match message {
                // A failing console or disk must not stop the service; there is
                // nowhere left to report it.
                Message::Line(line) => {
                    let _ = console.write_all(&line);
                    let _ = file.write_all(&line);
                }
                Message::Flush(done) => {
                    let _ = console.flush();
                    let _ = file.flush();
                    let _ = done.send(());
                }
            }
            match receiver.try_recv() {
                Ok(next) => message = next,
                Err(_) => break,
            }
        }
        let _ = console.flush();
        let _ = file.flush();
        // Let lines gather rather than be woken for each: while this thread sleeps,
        // a request that logs hands its line over without a system call.
        std::thread::sleep(GATHER);
    }
}

/// What env_logger writes to: one formatted record at a time, into the channel.
struct ChannelWriter(SyncSender<Message>);

impl Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0
            .send(Message::Line(buf.to_vec()))
            .map_err(|_| io::Error::from(io::ErrorKind::BrokenPipe))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
