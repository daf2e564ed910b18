//! `penguin probe URL`: one GET, exit 0 on a `2xx` answer and 1 otherwise, with one
//! line saying why. It is the health check of an image that holds nothing but the
//! binary, where there is no shell and no curl to run one.

use std::time::Duration;

use awc::error::{ConnectError, SendRequestError};
use clap::Args;

use crate::config::{Secs, peer_url};

/// The flags of `penguin probe`.
#[derive(Debug, Clone, Args)]
pub struct ProbeArgs {
    /// URL to GET, such as http://127.0.0.1:5001/health
    #[arg(value_name = "URL", value_parser = peer_url)]
    pub url: String,
    /// Seconds to wait for the answer, connecting included
    #[arg(long, value_name = "SECS", default_value_t = Secs(Duration::from_secs(3)))]
    pub timeout: Secs,
}

/// GETs the URL: `Ok` with the status line of a `2xx` answer, `Err` with why not.
pub fn run(args: &ProbeArgs) -> Result<String, String> {
    let url = &args.url;
    let timeout = args.timeout.0;
    actix_web::rt::System::new().block_on(async {
        let client = awc::Client::builder()
            .connector(awc::Connector::new().timeout(timeout))
            .timeout(timeout)
            .finish();
        let answer = client
            .get(url)
            .send()
            .await
            .map_err(|e| format!("{url}: {}", why(&e, timeout)))?;
        let status = answer.status();
        if status.is_success() {
            Ok(format!("{url}: {status}"))
        } else {
            Err(format!("{url}: answered {status}"))
        }
    })
}

fn why(error: &SendRequestError, timeout: Duration) -> String {
    match error {
        SendRequestError::Connect(ConnectError::Io(e))
            if e.kind() == std::io::ErrorKind::ConnectionRefused =>
        {
            "connection refused".into()
        }
        SendRequestError::Connect(ConnectError::Timeout) => {
            format!("no connection within {}s", timeout.as_secs_f64())
        }
        SendRequestError::Timeout => format!("no answer within {}s", timeout.as_secs_f64()),
        SendRequestError::Connect(ConnectError::Resolver(e)) => format!("the host name did not resolve: {e}"),
        other => other.to_string(),
    }
}
