//! Outbound MQTT (`fermyon:spin/mqtt@2.0.0`): a component publishes to a
//! broker its `allowed_outbound_hosts` names (`mqtt://host[:port]`), through
//! rumqttc.
//!
//! As in Spin: `open` checks the address and builds the client but does not
//! connect; the first `publish` connects, and each `publish` returns when the
//! broker has what the QoS asks for — the message written (at most once),
//! its PUBACK (at least once) or its PUBCOMP (exactly once). A broker that
//! refuses the connection or the credentials fails that `publish` with
//! `connection-failed`. The address is rumqttc's URL form,
//! `mqtt://host:port?client_id=...`; `mqtts://` (TLS) is not built in.

use std::time::Duration;

use anyhow::Result;
use rumqttc::{AsyncClient, Event, EventLoop, Incoming, MqttOptions, Outgoing, QoS};
use tracing::Instrument;
use wasmtime::component::{HasSelf, Linker, Resource, ResourceTable};

use crate::allowed_hosts::AllowedHosts;
use crate::bindings::mqtt::fermyon::spin::mqtt::{self, Error, Qos};
use std::sync::Arc;

/// Messages rumqttc may hold before `publish` waits for room.
const QUEUE: usize = 64;

/// A guest's connection: the client and the event loop that does its I/O,
/// driven by `publish` itself.
pub struct OpenConnection {
    client: AsyncClient,
    events: EventLoop,
}

/// What one instance may do with MQTT.
pub struct MqttState {
    allowed: Arc<AllowedHosts>,
    table: ResourceTable,
}

impl MqttState {
    pub fn new(allowed: Arc<AllowedHosts>) -> Self {
        MqttState { allowed, table: ResourceTable::new() }
    }
}

pub fn add_to_linker<T: Send + 'static>(linker: &mut Linker<T>, get: fn(&mut T) -> &mut MqttState) -> Result<()> {
    mqtt::add_to_linker::<T, HasSelf<MqttState>>(linker, get).map_err(|e| anyhow::anyhow!("{e:?}"))
}

impl mqtt::Host for MqttState {}

impl mqtt::HostConnection for MqttState {
    async fn open(
        &mut self,
        address: String,
        username: String,
        password: String,
        keep_alive_secs: u64,
    ) -> Result<Resource<OpenConnection>, Error> {
        let allowed = address.parse::<http::Uri>().is_ok_and(|uri| uri.scheme_str() == Some("mqtt") && self.allowed.allows(&uri));
        if !allowed {
            tracing::warn!("MQTT connection to {address} denied: add it to the component's allowed_outbound_hosts");
            return Err(Error::ConnectionFailed(format!("address {address} is not permitted")));
        }
        let mut options = MqttOptions::parse_url(address.as_str()).map_err(|e| {
            tracing::warn!("MQTT address {address} is not valid: {e}");
            Error::InvalidAddress
        })?;
        options.set_credentials(username, password);
        options.set_keep_alive(Duration::from_secs(keep_alive_secs.max(1)));
        let (client, events) = AsyncClient::new(options, QUEUE);
        self.table.push(OpenConnection { client, events }).map_err(|_| Error::TooManyConnections)
    }

    async fn publish(&mut self, conn: Resource<OpenConnection>, topic: String, payload: Vec<u8>, qos: Qos) -> Result<(), Error> {
        let span = crate::telemetry::publish_span("mqtt", &topic);
        let conn = self.table.get_mut(&conn).map_err(|e| Error::Other(e.to_string()))?;
        let qos = match qos {
            Qos::AtMostOnce => QoS::AtMostOnce,
            Qos::AtLeastOnce => QoS::AtLeastOnce,
            Qos::ExactlyOnce => QoS::ExactlyOnce,
        };
        let result = async {
            conn.client.publish(topic, qos, false, payload).await.map_err(|e| Error::Other(e.to_string()))?;
            // Drive the connection until the broker has the message as the
            // QoS asks; connecting happens here the first time.
            loop {
                let event = conn.events.poll().await.map_err(|e| Error::ConnectionFailed(e.to_string()))?;
                let done = matches!(
                    (qos, event),
                    (QoS::AtMostOnce, Event::Outgoing(Outgoing::Publish(_)))
                        | (QoS::AtLeastOnce, Event::Incoming(Incoming::PubAck(_)))
                        | (QoS::ExactlyOnce, Event::Incoming(Incoming::PubComp(_)))
                );
                if done {
                    return Ok(());
                }
            }
        }
        .instrument(span.clone())
        .await;
        if let Err(e) = &result {
            span.record("otel.status_code", "ERROR");
            tracing::warn!("MQTT publish failed: {e:?}");
        }
        result
    }

    async fn drop(&mut self, conn: Resource<OpenConnection>) -> wasmtime::Result<()> {
        // Closing the socket ends the session; no will message is set.
        let _ = self.table.delete(conn);
        Ok(())
    }
}
