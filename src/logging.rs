//! Logs to the console (stderr) and to `logs.log`, at the level `RUST_LOG` sets
//! (default `info`). Each line's target names the service that wrote it; a line about
//! a request (or a recovery of an order) ends with its id, `request_id=<id>` (`trace`). When
//! `logs.log` would grow past `LOG_MAX_MB`, it becomes `logs.log.1` (replacing the
//! one before) and a new `logs.log` starts: the logs never take more than twice that.
//!
//! `LOG_FORMAT=json` ([`LogFormat`]) writes each line as one JSON object instead, with
//! the same facts as fields, for a log store to index: `time`, `level`, `service` (the
//! service's name, or for a line about no one service the module that wrote it, as the
//! text line shows it), `message`, `request_id` when the line is about a request, and
//! whatever fields the line carries (the access line: `method`, `path`, `status`,
//! `duration_ms`).
//!
//! A request never waits for a disk or a terminal: records are formatted on the
//! caller's thread and handed over a bounded channel to one writer thread, which
//! writes them to both places in batches, at most a few milliseconds behind. When the
//! writer is so far behind that the channel is full, a line is dropped rather than
//! waited for, and counted ([`DROPPED`], which every service's `/metrics` shows).

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{LazyLock, OnceLock};

use log::kv::{Key, Value, VisitSource};
use prometheus::IntCounter;
use serde_json::Map;

/// Lines waiting for the writer before new ones are dropped.
const BACKLOG_LINES: usize = 64 * 1024;
/// How long the writer lets lines gather after writing a batch.
const GATHER: std::time::Duration = std::time::Duration::from_millis(5);

enum Message {
    Line(Vec<u8>),
    Flush(SyncSender<()>),
}

static WRITER: OnceLock<SyncSender<Message>> = OnceLock::new();
/// Log lines dropped since the process started because the writer was too far behind:
/// one counter, which every service's `/metrics` registers (`metrics`).
pub static DROPPED: LazyLock<IntCounter> = LazyLock::new(|| {
    IntCounter::new(
        "log_lines_dropped_total",
        "Log lines dropped because the log writer was too far behind (process-wide)",
    )
    .expect("a valid counter name")
});

/// How many log lines were dropped since the process started.
pub fn dropped_lines() -> u64 {
    DROPPED.get()
}

/// How each line is written: `text` for a person, `json` (one object a line) for a
/// log store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// `logs.log`, turned into `logs.log.1` when it reaches its size.
struct LogFile {
    path: PathBuf,
    file: BufWriter<File>,
    written: u64,
    max_bytes: u64,
}

impl LogFile {
    fn open(path: PathBuf, max_bytes: u64) -> io::Result<Self> {
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        let written = file.metadata()?.len();
        Ok(Self {
            path,
            file: BufWriter::new(file),
            written,
            max_bytes,
        })
    }

    fn write(&mut self, line: &[u8]) -> io::Result<()> {
        if self.written > 0 && self.written + line.len() as u64 > self.max_bytes {
            self.file.flush()?;
            std::fs::rename(&self.path, self.path.with_extension("log.1"))?;
            *self = Self::open(self.path.clone(), self.max_bytes)?;
        }
        self.written += line.len() as u64;
        self.file.write_all(line)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// Starts logging to the console and to `<dir>/logs.log` (at most `max_bytes`, then
/// rotated), what `filter` selects (env_logger's syntax: a level, or directives such
/// as `info,penguin=debug`), in `format`.
pub fn init(dir: &Path, filter: &str, max_bytes: u64, format: LogFormat) -> io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let file = LogFile::open(dir.join("logs.log"), max_bytes)?;
    let (sender, receiver) = mpsc::sync_channel(BACKLOG_LINES);
    std::thread::Builder::new()
        .name("log-writer".into())
        .spawn(move || write_lines(receiver, file))?;
    let _ = WRITER.set(sender.clone());
    let mut builder = env_logger::Builder::new();
    builder
        .filter_module("actix_server", log::LevelFilter::Warn)
        // Its lines do not name the database; db::open says it instead.
        .filter_module("rusqlite_migration", log::LevelFilter::Warn)
        .parse_filters(filter)
        .target(env_logger::Target::Pipe(Box::new(ChannelWriter(sender))));
    match format {
        // Plain text, the layout of env_logger's default without its styling pass,
        // and the id of the request (or recovery) the line is about.
        LogFormat::Text => builder.format(|line, record| {
            let timestamp = line.timestamp();
            let (level, target, message) = (record.level(), record.target(), record.args());
            match crate::trace::current_id() {
                Some(id) => writeln!(
                    line,
                    "[{timestamp} {level:<5} {target}] {message} request_id={id}"
                ),
                None => writeln!(line, "[{timestamp} {level:<5} {target}] {message}"),
            }
        }),
        LogFormat::Json => builder.format(|line, record| {
            let object = json_line(
                line.timestamp().to_string(),
                record,
                crate::trace::current_id().map(|id| id.to_string()),
            );
            serde_json::to_writer(&mut *line, &object)?;
            writeln!(line)
        }),
    };
    builder.try_init().map_err(io::Error::other)
}

/// One record as a JSON object: its time, level, service, message, request id and
/// fields.
fn json_line(
    time: String,
    record: &log::Record,
    request_id: Option<String>,
) -> Map<String, serde_json::Value> {
    let mut object = Map::new();
    object.insert("time".into(), time.into());
    object.insert("level".into(), record.level().as_str().into());
    object.insert("service".into(), record.target().into());
    object.insert("message".into(), record.args().to_string().into());
    if let Some(id) = request_id {
        object.insert("request_id".into(), id.into());
    }
    // Visiting fields held in memory cannot fail.
    let _ = record.key_values().visit(&mut Fields(&mut object));
    object
}

/// Copies a record's fields into its JSON object, numbers as numbers.
struct Fields<'a>(&'a mut Map<String, serde_json::Value>);

impl<'kvs> VisitSource<'kvs> for Fields<'_> {
    fn visit_pair(&mut self, key: Key<'kvs>, value: Value<'kvs>) -> Result<(), log::kv::Error> {
        let value = if let Some(n) = value.to_u64() {
            n.into()
        } else if let Some(n) = value.to_i64() {
            n.into()
        } else if let Some(x) = value.to_f64() {
            x.into()
        } else {
            value.to_string().into()
        };
        self.0.insert(key.as_str().into(), value);
        Ok(())
    }
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

fn write_lines(receiver: Receiver<Message>, mut file: LogFile) {
    let mut console = BufWriter::new(io::stderr());
    while let Ok(mut message) = receiver.recv() {
        loop {
            match message {
                // A failing console or disk must not stop the service; there is
                // nowhere left to report it.
                Message::Line(line) => {
                    let _ = console.write_all(&line);
                    let _ = file.write(&line);
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
        match self.0.try_send(Message::Line(buf.to_vec())) {
            Ok(()) => Ok(buf.len()),
            Err(TrySendError::Full(_)) => {
                DROPPED.inc();
                Ok(buf.len())
            }
            Err(TrySendError::Disconnected(_)) => Err(io::Error::from(io::ErrorKind::BrokenPipe)),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_the_writer_has_no_room_for_is_dropped_and_counted_never_waited_for() {
        let (sender, receiver) = mpsc::sync_channel(1);
        let mut writer = ChannelWriter(sender);
        let before = dropped_lines();
        writer.write_all(b"kept\n").expect("queued");
        // Nobody reads: a blocking send would hang this test.
        writer.write_all(b"dropped\n").expect("dropped, not an error");
        assert!(dropped_lines() > before);
        assert!(matches!(receiver.try_recv(), Ok(Message::Line(line)) if line == b"kept\n"));
        assert!(receiver.try_recv().is_err(), "the second line was not queued");
    }

    #[test]
    fn a_json_line_carries_the_record_its_request_id_and_its_fields_as_numbers_or_strings() {
        let fields = [
            ("method", Value::from("GET")),
            ("status", Value::from(200u16)),
            ("duration_ms", Value::from(0.25f64)),
        ];
        let message = "GET /health 200 0.25ms";
        let line = json_line(
            "2026-01-02T03:04:05Z".into(),
            &log::Record::builder()
                .args(format_args!("{message}"))
                .level(log::Level::Info)
                .target("pagos")
                .key_values(&fields)
                .build(),
            Some("r-1".into()),
        );
        assert_eq!(
            serde_json::Value::Object(line),
            serde_json::json!({
                "time": "2026-01-02T03:04:05Z", "level": "INFO", "service": "pagos",
                "message": "GET /health 200 0.25ms", "request_id": "r-1",
                "method": "GET", "status": 200, "duration_ms": 0.25,
            })
        );
    }

    #[test]
    fn the_log_file_turns_into_logs_log_1_when_it_is_full() {
        let dir = tempfile::tempdir().expect("a folder");
        let path = dir.path().join("logs.log");
        let mut file = LogFile::open(path.clone(), 100).expect("opens");
        for n in 0..12 {
            file.write(format!("line {n:02} of twenty bytes\n").as_bytes())
                .expect("writes");
        }
        file.flush().expect("flushes");
        let current = std::fs::read_to_string(&path).expect("logs.log");
        let previous = std::fs::read_to_string(dir.path().join("logs.log.1")).expect("logs.log.1");
        assert!(
            current.len() <= 100 && previous.len() <= 100,
            "{current:?} {previous:?}"
        );
        assert!(current.ends_with("line 11 of twenty bytes\n"), "{current:?}");
        assert!(
            previous.ends_with("line 07 of twenty bytes\n"),
            "the file before the last rotation: {previous:?}"
        );
        assert!(
            !dir.path().join("logs.log.2").exists(),
            "one old file is kept, no more"
        );
    }
}
