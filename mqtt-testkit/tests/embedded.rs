//! The embedded broker of the quick starts with the real client, 3.1.1 and 5.0 at once.

use std::time::Duration;

use mqtt_tokio::{Client, ClientOptions, Event, Events, Message, ProtocolVersion, QoS};

fn connect(url: &str, id: &str, version: ProtocolVersion) -> (Client, Events) {
    let options = ClientOptions::new(url)
        .client_id(id)
        .version(version)
        .no_reconnect();
    Client::connect(options).unwrap()
}

/// The next `count` messages: topic and QoS.
async fn messages(events: &mut Events, count: usize) -> Vec<(String, QoS)> {
    let mut received = Vec::new();
    while received.len() < count {
        match events.recv().await {
            Some(Event::Message { publish, .. }) => {
                received.push((publish.topic.as_str().to_owned(), publish.qos()));
            }
            Some(_) => {}
            None => panic!("the events ended after {received:?}"),
        }
    }
    received
}

#[tokio::test]
async fn messages_arrive_at_the_lower_of_the_two_qos() {
    use QoS::{AtLeastOnce, AtMostOnce, ExactlyOnce};
    let url = mqtt_testkit::embedded_broker().unwrap();
    let (v311, mut v311_events) = connect(&url, "sub-3.1.1", ProtocolVersion::V3_1_1);
    let (v5, mut v5_events) = connect(&url, "sub-5.0", ProtocolVersion::V5);
    assert_eq!(
        v311.subscribe("t/#", AtLeastOnce).await.unwrap(),
        AtLeastOnce
    );
    assert_eq!(v5.subscribe("t/#", ExactlyOnce).await.unwrap(), ExactlyOnce);

    let run = async {
        for qos in [AtMostOnce, AtLeastOnce, ExactlyOnce] {
            let message = Message::new(&format!("t/{}", qos as u8), "hello").unwrap();
            v5.publish(message.qos(qos)).await.unwrap();
        }
        let topics = ["t/0", "t/1", "t/2"].map(String::from);
        assert_eq!(
            messages(&mut v311_events, 3).await,
            [AtMostOnce, AtLeastOnce, AtLeastOnce]
                .into_iter()
                .zip(topics.clone())
                .map(|(qos, topic)| (topic, qos))
                .collect::<Vec<_>>()
        );
        assert_eq!(
            messages(&mut v5_events, 3).await,
            [AtMostOnce, AtLeastOnce, ExactlyOnce]
                .into_iter()
                .zip(topics)
                .map(|(qos, topic)| (topic, qos))
                .collect::<Vec<_>>()
        );
    };
    tokio::time::timeout(Duration::from_secs(10), run)
        .await
        .expect("the messages came back in time");
    v311.disconnect().await.unwrap();
    v5.disconnect().await.unwrap();
}
