//! `mqtt sub`: subscribe and print messages as mosquitto_sub does.

use std::io::Write;
use std::time::Duration;

use bytes::Bytes;
use mqtt_tokio::proto::{TopicFilter, TopicName};
use mqtt_tokio::{Client, Event, Message, Publish, QoS, Subscription};

use crate::args::{SubArgs, DEFAULT_ID_SUB};
use crate::connect::{connect, connection_error, options, split_url};
use crate::format::Format;
use crate::packet_log::PacketLog;
use crate::props::{Properties, Tool};
use crate::utc::Utc;
use crate::CliError;

/// Exit code when `-W` runs out, as mosquitto_sub uses (ETIMEDOUT).
pub(crate) const TIMEOUT_EXIT: u8 = 27;

/// How the command ended without an error.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Finish {
    /// Count reached, `-E`, interrupted, or `--retained-only` done.
    Done,
    /// `-W` elapsed: "Timed out" on stderr, as mosquitto_sub says it.
    TimedOut,
}

/// The filters of `-t`, `-T` or `-U`, which mosquitto calls `kind` topics when one is invalid.
fn filters(list: &[String], kind: &str) -> Result<Vec<TopicFilter>, CliError> {
    list.iter()
        .map(|t| {
            TopicFilter::new(t).map_err(|_| {
                CliError::Usage(format!(
                    "Invalid {kind} topic '{t}', are all '+' and '#' wildcards correct?"
                ))
            })
        })
        .collect()
}

/// Runs `mqtt sub`.
pub(crate) async fn run(args: SubArgs) -> Result<Finish, CliError> {
    let url = args.conn.url.as_deref().map(split_url).transpose()?;
    let mut topics = args.topics.clone();
    if let Some(t) = url.as_ref().and_then(|u| u.topic.clone()) {
        topics.push(t);
    }
    if topics.is_empty() {
        return Err(CliError::Usage(
            "You must specify a topic to subscribe to.".to_string(),
        ));
    }
    let subscribe = filters(&topics, "subscription")?;
    let filter_out = filters(&args.filter_out, "filter")?;
    let unsubscribe = filters(&args.unsubscribe, "unsubscribe")?;
    let qos = QoS::from_u8(args.qos).unwrap_or_default();
    let props = Properties::parse(&args.conn.properties, Tool::Sub)?;
    let format = args.format.as_deref().map(Format::parse).transpose()?;

    let options = options(&args.conn, url.as_ref(), &props, DEFAULT_ID_SUB)?;
    let log = PacketLog::new(args.conn.debug, options.config.client_id.as_str());
    let mut stop = Stop::install()?;
    let (client, mut events) = tokio::select! {
        connected = connect(options, &log) => connected?,
        () = stop.recv() => return Ok(Finish::Done),
    };
    if !unsubscribe.is_empty() {
        log.unsubscribe(log.next_mid(), &args.unsubscribe);
        client
            .unsubscribe_with(unsubscribe, props.unsubscribe.clone())
            .await
            .map_err(|e| CliError::Subscribe(e.to_string()))?;
        log.unsuback();
    }
    let subscriptions: Vec<Subscription> = subscribe
        .into_iter()
        .map(|f| Subscription::new(f, qos))
        .collect();
    let mid = log.next_mid();
    log.subscribe(mid, &subscriptions);
    let results = client
        .subscribe_with(subscriptions, props.subscribe.clone())
        .await
        .map_err(|e| CliError::Subscribe(e.to_string()))?;
    log.suback(mid, &results);
    if results.iter().all(|r| r.is_err()) {
        client.abort();
        return Err(CliError::Subscribe(
            "all subscription requests were denied".to_string(),
        ));
    }
    for (topic, result) in topics.iter().zip(&results) {
        if let Err(code) = result {
            eprintln!("Warning: subscription to {topic} refused: {code:?}");
        }
    }
    if args.exit_after_subscribe {
        log.disconnect();
        let _ = client.disconnect().await;
        return Ok(Finish::Done);
    }

    let deadline = args
        .timeout
        .map(|s| tokio::time::Instant::now() + Duration::from_secs(s));
    let mut printed: u64 = 0;
    let quiet = args.conn.quiet;
    let stdout = std::io::stdout();
    let outcome = loop {
        let next = async {
            match deadline {
                Some(d) => tokio::time::timeout_at(d, events.recv()).await.ok(),
                None => Some(events.recv().await),
            }
        };
        let event = tokio::select! {
            e = next => e,
            () = stop.recv() => break Ok(Finish::Done),
        };
        let Some(event) = event else {
            break Ok(Finish::TimedOut);
        };
        match event {
            Some(Event::Message { publish, .. }) => {
                log.received(&publish);
                if filter_out.iter().any(|f| f.matches(&publish.topic)) {
                    continue;
                }
                if args.retained_only && !publish.retain {
                    break Ok(Finish::Done);
                }
                if args.no_retained && publish.retain {
                    continue;
                }
                if args.remove_retained && publish.retain {
                    let cleared = clear_retained(&client, &log, &publish.topic, quiet);
                    if let Err(e) = cleared.await {
                        break Err(e);
                    }
                }
                let line = render(&args, format.as_ref(), &publish);
                let mut out = stdout.lock();
                let written = out.write_all(&line).and_then(|()| out.flush());
                if written.is_err() {
                    // The reader went away (e.g. `| head`): stop quietly.
                    break Ok(Finish::Done);
                }
                printed += 1;
                if args.count.is_some_and(|c| printed >= c) {
                    break Ok(Finish::Done);
                }
            }
            Some(Event::Disconnected { reason }) => break Err(connection_error(&reason)),
            Some(Event::Closed) | None => {
                break Err(CliError::Connect("connection closed".to_string()))
            }
            Some(_) => {}
        }
    };
    match outcome {
        Ok(finish) => {
            log.disconnect();
            let _ = tokio::time::timeout(Duration::from_secs(5), client.disconnect()).await;
            Ok(finish)
        }
        Err(e) => {
            client.abort();
            Err(e)
        }
    }
}

/// SIGINT and SIGTERM end `mqtt sub` as they end mosquitto_sub: with DISCONNECT (so the
/// broker drops the will) and exit code 0. The handlers are in place from [`Stop::install`]
/// on, so a signal is kept until [`Stop::recv`] is awaited.
struct Stop {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl Stop {
    #[cfg(unix)]
    fn install() -> Result<Self, CliError> {
        use tokio::signal::unix::{signal, SignalKind};
        let handler =
            |kind| signal(kind).map_err(|e| CliError::Io(format!("cannot handle signals: {e}")));
        Ok(Self {
            interrupt: handler(SignalKind::interrupt())?,
            terminate: handler(SignalKind::terminate())?,
        })
    }

    #[cfg(not(unix))]
    fn install() -> Result<Self, CliError> {
        Ok(Self {})
    }

    /// Resolves at the first signal.
    #[cfg(unix)]
    async fn recv(&mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
    }

    #[cfg(not(unix))]
    async fn recv(&mut self) {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// A message as it is printed: with the `-F` format, or as the payload (`-v`: topic first),
/// then a newline unless `-N`.
fn render(args: &SubArgs, format: Option<&Format>, publish: &Publish) -> Vec<u8> {
    let mut line = Vec::new();
    match format {
        Some(format) => {
            let warning = format.render(publish, &Utc::now(), args.pretty, &mut line);
            if let Some(warning) = warning.filter(|_| !args.conn.quiet) {
                eprintln!("Error: {warning}");
            }
        }
        None => {
            if args.verbose {
                line.extend_from_slice(publish.topic.as_bytes());
                line.push(b' ');
            }
            line.extend_from_slice(&publish.payload);
        }
    }
    if !args.no_newline {
        line.push(b'\n');
    }
    line
}

/// `--remove-retained`: replaces a retained message by an empty retained one, which clears
/// it, at QoS 1 as mosquitto_sub does.
async fn clear_retained(
    client: &Client,
    log: &PacketLog,
    topic: &TopicName,
    quiet: bool,
) -> Result<(), CliError> {
    let empty = Message::with_topic(topic.clone(), Bytes::new())
        .qos(QoS::AtLeastOnce)
        .retain(true);
    crate::pub_cmd::send(client, log, log.next_mid(), empty, quiet).await
}
