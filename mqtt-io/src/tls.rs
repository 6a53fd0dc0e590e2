//! rustls client configuration from [`TlsOptions`]: the same verification rules on every
//! runtime.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};

#[doc(no_inline)]
pub use rustls::ClientConfig;
use tracing::{debug, warn};

use bytes::Bytes;
use mqtt_session::client::{BrokerUrl, OptionsError, PemSource, TlsOptions, TlsVersion};

fn tls_error(context: &str, error: impl std::fmt::Display) -> OptionsError {
    OptionsError::Tls(format!("{context}: {error}"))
}

/// Builds the rustls configuration: chains and host names are verified, against the given CAs
/// and (unless turned off, or by default when a CA is given) the system's roots, unless the
/// options say `danger_accept_invalid_certs`; TLS 1.2 and 1.3, or 1.3 alone; the client
/// certificate and ALPN protocols are added when given.
pub fn client_config(options: &TlsOptions) -> Result<Arc<ClientConfig>, OptionsError> {
    let provider = crypto_provider();
    let versions: &[&rustls::SupportedProtocolVersion] = match options.min_version {
        TlsVersion::V1_3 => &[&rustls::version::TLS13],
        _ => rustls::DEFAULT_VERSIONS,
    };
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .map_err(|e| tls_error("protocol versions", e))?;
    let builder = if options.danger_accept_invalid_certs {
        warn!("TLS certificate verification is off");
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider)))
    } else {
        builder.with_root_certificates(root_store(options)?)
    };
    let mut config = match &options.client_cert {
        Some((cert, key)) => {
            let certs = CertificateDer::pem_slice_iter(&load(cert)?)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| tls_error("client certificate", e))?;
            if certs.is_empty() {
                return Err(OptionsError::Tls(
                    "no certificate in the client certificate PEM".into(),
                ));
            }
            let key = PrivateKeyDer::from_pem_slice(&load(key)?)
                .map_err(|e| tls_error("client key", e))?;
            builder
                .with_client_auth_cert(certs, key)
                .map_err(|e| tls_error("client certificate", e))?
        }
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = options.alpn.clone();
    Ok(Arc::new(config))
}

/// The cryptography TLS runs on: the process-wide default provider when the application
/// installed one (`CryptoProvider::install_default`, e.g. aws-lc-rs's for post-quantum key
/// exchange), otherwise *ring*'s, which needs no C toolchain beyond *ring*'s own.
fn crypto_provider() -> Arc<CryptoProvider> {
    if let Some(installed) = CryptoProvider::get_default() {
        return installed.clone();
    }
    // rustls 0.23.48 deprecates *ring*'s provider for lacking post-quantum key exchange; it
    // is still maintained and supported, and an application that wants post-quantum key
    // exchange installs another provider as above.
    #[allow(deprecated)]
    let ring = rustls::crypto::ring::default_provider();
    Arc::new(ring)
}

/// The rustls configuration for a client of `brokers`: `None` when none of them uses TLS, so
/// that plain clients never load root certificates.
pub fn client_config_for(
    brokers: &[BrokerUrl],
    options: &TlsOptions,
) -> Result<Option<Arc<ClientConfig>>, OptionsError> {
    if brokers.iter().any(|b| b.scheme.is_tls()) {
        client_config(options).map(Some)
    } else {
        Ok(None)
    }
}

fn root_store(options: &TlsOptions) -> Result<RootCertStore, OptionsError> {
    let mut roots = RootCertStore::empty();
    for source in &options.ca {
        let pem = load(source)?;
        let mut found = 0;
        for cert in CertificateDer::pem_slice_iter(&pem) {
            let cert = cert.map_err(|e| tls_error("CA certificate", e))?;
            roots
                .add(cert)
                .map_err(|e| tls_error("CA certificate", e))?;
            found += 1;
        }
        if found == 0 {
            return Err(OptionsError::Tls(format!(
                "no certificate in CA {source:?}"
            )));
        }
    }
    if options.use_system_roots() {
        let native = rustls_native_certs::load_native_certs();
        for error in &native.errors {
            debug!(%error, "while loading the system's root certificates");
        }
        let (added, ignored) = roots.add_parsable_certificates(native.certs);
        debug!(added, ignored, "system root certificates");
    }
    if roots.is_empty() {
        return Err(OptionsError::Tls(
            "no trusted root certificate: give a CA or install the system's CA bundle".into(),
        ));
    }
    Ok(roots)
}

/// The name to verify the broker's certificate against and to send in SNI.
pub fn server_name(host: &str, options: &TlsOptions) -> std::io::Result<ServerName<'static>> {
    let name = options.server_name.as_deref().unwrap_or(host);
    ServerName::try_from(name.to_owned())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))
}

/// Accepts every certificate but still checks handshake signatures, so the session is
/// encrypted to whoever holds the presented key.
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Reads PEM data: the text itself, or the file, read now (when a client starts).
fn load(source: &PemSource) -> Result<Bytes, OptionsError> {
    match source {
        PemSource::Pem(pem) => Ok(pem.clone()),
        PemSource::File(path) => {
            std::fs::read(path)
                .map(Bytes::from)
                .map_err(|error| OptionsError::ReadFile {
                    path: path.clone(),
                    error,
                })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mqtt_session::client::ClientOptions;
    use rustls::{ClientConnection, ServerConfig, ServerConnection, SupportedProtocolVersion};

    /// A server with the test certificates, the given TLS versions and ALPN protocols.
    fn server(
        certs: &mqtt_testkit::TestCerts,
        versions: &[&'static SupportedProtocolVersion],
        alpn: &[&str],
    ) -> Arc<ServerConfig> {
        let provider = crypto_provider();
        let chain = CertificateDer::pem_slice_iter(certs.server.cert_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = PrivateKeyDer::from_pem_slice(certs.server.key_pem.as_bytes()).unwrap();
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap();
        config.alpn_protocols = alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
        Arc::new(config)
    }

    /// Runs a handshake in memory; the version and ALPN protocol agreed on.
    fn handshake(
        client: Arc<ClientConfig>,
        server: Arc<ServerConfig>,
    ) -> Result<(Option<rustls::ProtocolVersion>, Option<Vec<u8>>), rustls::Error> {
        let name = ServerName::try_from("localhost").unwrap();
        let mut client = ClientConnection::new(client, name)?;
        let mut server = ServerConnection::new(server)?;
        for _ in 0..10 {
            let mut wire = Vec::new();
            client.write_tls(&mut wire).unwrap();
            server.read_tls(&mut &wire[..]).unwrap();
            server.process_new_packets()?;
            let mut wire = Vec::new();
            server.write_tls(&mut wire).unwrap();
            client.read_tls(&mut &wire[..]).unwrap();
            client.process_new_packets()?;
            if !client.is_handshaking() && !server.is_handshaking() {
                break;
            }
        }
        Ok((
            client.protocol_version(),
            client.alpn_protocol().map(<[u8]>::to_vec),
        ))
    }

    fn client(certs: &mqtt_testkit::TestCerts, options: ClientOptions) -> Arc<ClientConfig> {
        let options = options.ca_pem(certs.ca.cert_pem.clone());
        client_config(&options.tls).unwrap()
    }

    #[test]
    fn tls_versions_follow_the_minimum() {
        let dir = mqtt_testkit::tempdir();
        let certs = mqtt_testkit::TestCerts::generate(dir.path());
        let tls12_only = server(&certs, &[&rustls::version::TLS12], &[]);
        let any = server(&certs, rustls::DEFAULT_VERSIONS, &[]);
        let default = client(&certs, ClientOptions::new("mqtts://localhost"));
        let tls13 = client(
            &certs,
            ClientOptions::new("mqtts://localhost").min_tls_version(TlsVersion::V1_3),
        );
        let (version, _) = handshake(default.clone(), tls12_only.clone()).unwrap();
        assert_eq!(version, Some(rustls::ProtocolVersion::TLSv1_2));
        let (version, _) = handshake(default, any.clone()).unwrap();
        assert_eq!(version, Some(rustls::ProtocolVersion::TLSv1_3));
        assert!(handshake(tls13.clone(), tls12_only).is_err());
        let (version, _) = handshake(tls13, any).unwrap();
        assert_eq!(version, Some(rustls::ProtocolVersion::TLSv1_3));
    }

    #[test]
    fn alpn_protocols_are_offered_in_order() {
        let dir = mqtt_testkit::tempdir();
        let certs = mqtt_testkit::TestCerts::generate(dir.path());
        let options = ClientOptions::new("mqtts://localhost")
            .alpn("x-amzn-mqtt-ca")
            .alpn("mqtt");
        let config = client(&certs, options);
        let server_mqtt = server(&certs, rustls::DEFAULT_VERSIONS, &["mqtt"]);
        let (_, agreed) = handshake(config.clone(), server_mqtt).unwrap();
        assert_eq!(agreed.as_deref(), Some(&b"mqtt"[..]));
        let server_none = server(&certs, rustls::DEFAULT_VERSIONS, &[]);
        let (_, agreed) = handshake(config, server_none).unwrap();
        assert_eq!(agreed, None);
    }
}
