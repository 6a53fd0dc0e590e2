//! `mqtt pub`: publish a message, a file, or stdin, and wait until the broker has it.

use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use mqtt_tokio::{Client, Error, Event, Message, PublishError, PublishOutcome, QoS};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::args::{PubArgs, DEFAULT_ID_PUB};
use crate::connect::{connect, connection_error, options, split_url};
use crate::packet_log::PacketLog;
use crate::props::{Properties, Tool};
use crate::reason;
use crate::CliError;

/// Publishes awaited at once when reading lines: keeps the broker busy without unbounded
/// memory.
const PIPELINE: usize = 64;

/// mosquitto_pub's complaint when the topic or the message is missing.
const BOTH_NEEDED: &str = "Both topic and message must be supplied.";

/// Runs `mqtt pub`.
pub(crate) async fn run(args: PubArgs) -> Result<(), CliError> {
    let url = args.conn.url.as_deref().map(split_url).transpose()?;
    let topic = args
        .topic
        .clone()
        .or_else(|| url.as_ref().and_then(|u| u.topic.clone()))
        .ok_or_else(|| CliError::Usage(BOTH_NEEDED.to_string()))?;
    let topic = mqtt_tokio::proto::TopicName::new(&topic).map_err(|_| {
        CliError::Usage(format!(
            "Invalid publish topic '{topic}', does it contain '+' or '#'?"
        ))
    })?;
    let props = Properties::parse(&args.conn.properties, Tool::Pub)?;
    let source = Source::from_args(&args)?;
    let qos = QoS::from_u8(args.qos).unwrap_or_default();
    let quiet = args.conn.quiet;
    let message = |payload: Bytes| {
        Message::with_topic(topic.clone(), payload)
            .qos(qos)
            .retain(args.retain)
            .properties(props.publish.clone())
    };

    let options = options(&args.conn, url.as_ref(), &props, DEFAULT_ID_PUB)?;
    let log = PacketLog::new(args.conn.debug, options.config.client_id.as_str());
    let log = &log;
    let (client, mut events) = connect(options, log).await?;
    // Watch the connection while publishing: a lost connection ends the command.
    let watcher = tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            match event {
                Event::Disconnected { reason } => return Some(connection_error(&reason)),
                Event::Closed => return None,
                _ => {}
            }
        }
        None
    });

    let result = async {
        match source {
            Source::Lines => {
                let lines = BufReader::new(tokio::io::stdin()).lines();
                let stream = futures_util::stream::unfold(lines, |mut lines| async move {
                    match lines.next_line().await {
                        Ok(Some(line)) => Some((Ok(line), lines)),
                        Ok(None) => None,
                        Err(e) => Some((Err(e), lines)),
                    }
                });
                let outcomes = stream
                    .map(|line| {
                        let client = client.clone();
                        let message = line.map(|l| message(Bytes::from(l.into_bytes())));
                        // Numbered here, in the order of the lines.
                        let mid = log.next_mid();
                        async move {
                            let message = message.map_err(|e| CliError::Io(e.to_string()))?;
                            send(&client, log, mid, message, quiet).await
                        }
                    })
                    .buffered(PIPELINE);
                let mut outcomes = std::pin::pin!(outcomes);
                while let Some(outcome) = outcomes.next().await {
                    outcome?;
                }
            }
            Source::Payload(payload) => {
                for number in 1..=args.repeat.max(1) {
                    if number > 1 && args.repeat_delay > 0.0 {
                        tokio::time::sleep(Duration::from_secs_f64(args.repeat_delay)).await;
                    }
                    let mid = log.next_mid();
                    send(&client, log, mid, message(payload.clone()), quiet).await?;
                }
            }
        }
        Ok(())
    }
    .await;

    match result {
        Ok(()) => {
            log.disconnect();
            client
                .disconnect()
                .await
                .map_err(|e| CliError::Connect(e.to_string()))
        }
        // The connection went away under a publish: the watcher knows why.
        Err(CliError::Connect(error)) => {
            client.abort();
            Err(watcher
                .await
                .ok()
                .flatten()
                .unwrap_or(CliError::Connect(error)))
        }
        Err(error) => {
            client.abort();
            Err(error)
        }
    }
}

/// Where the payload comes from.
enum Source {
    /// One payload, maybe repeated.
    Payload(Bytes),
    /// One message per line of stdin.
    Lines,
}

impl Source {
    fn from_args(args: &PubArgs) -> Result<Self, CliError> {
        if let Some(m) = &args.message {
            return Ok(Self::Payload(Bytes::from(m.clone().into_bytes())));
        }
        if let Some(path) = &args.file {
            let data = std::fs::read(path)
                .map_err(|e| CliError::Usage(format!("cannot read {}: {e}", path.display())))?;
            return Ok(Self::Payload(data.into()));
        }
        if args.null_message {
            return Ok(Self::Payload(Bytes::new()));
        }
        if args.stdin_line {
            return Ok(Self::Lines);
        }
        if args.stdin_file {
            let mut data = Vec::new();
            std::io::Read::read_to_end(&mut std::io::stdin(), &mut data)
                .map_err(|e| CliError::Io(e.to_string()))?;
            return Ok(Self::Payload(data.into()));
        }
        Err(CliError::Usage(BOTH_NEEDED.to_string()))
    }
}

/// Publishes `message` with message id `mid` (see [`PacketLog::next_mid`]), writes its `-d`
/// lines and checks how it went. As in mosquitto_pub, a message the broker refuses (5.0) or
/// one larger than the broker accepts is a warning (unless `quiet`), and publishing goes
/// on; a connection that went away is [`CliError::Connect`].
pub(crate) async fn send(
    client: &Client,
    log: &PacketLog,
    mid: u16,
    message: Message,
    quiet: bool,
) -> Result<(), CliError> {
    let qos = message.qos;
    log.publish(mid, &message);
    let result = client.publish_and_wait(message).await;
    log.published(mid, qos, &result);
    let refusal = match result {
        Ok(PublishOutcome::Rejected { reason, .. }) => reason.as_u8(),
        Ok(PublishOutcome::Dropped(PublishError::PacketTooLarge { .. }))
        | Err(Error::Publish(PublishError::PacketTooLarge { .. })) => PACKET_TOO_LARGE,
        Ok(PublishOutcome::Dropped(e)) => return Err(CliError::Publish(e.to_string())),
        Ok(PublishOutcome::Expired) => {
            return Err(CliError::Publish(
                "the message expired before it could be sent".to_string(),
            ))
        }
        Ok(_) => return Ok(()),
        Err(e @ (Error::Closed | Error::NotSent | Error::Stopped(_) | Error::Io(_))) => {
            return Err(CliError::Connect(e.to_string()))
        }
        Err(e) => return Err(CliError::Publish(e.to_string())),
    };
    if !quiet {
        eprintln!(
            "Warning: Publish {mid} failed: {}.",
            reason::reason_string(refusal)
        );
    }
    Ok(())
}

/// The 5.0 reason code "Packet too large", which mosquitto's words for it go with.
const PACKET_TOO_LARGE: u8 = 0x95;
