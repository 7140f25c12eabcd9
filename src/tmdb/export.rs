//! TMDb's daily ID export (`movie_ids_MM_DD_YYYY.json.gz`): downloaded and parsed as a stream, one
//! JSON object per line, never held whole in memory.

use std::time::{Duration, Instant};

use async_compression::tokio::bufread::GzipDecoder;
use bytes::BytesMut;
use chrono::NaiveDate;
use futures::{StreamExt, TryStreamExt};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, BufReader};
use tokio_util::io::StreamReader;

use super::TmdbError;
use super::client::{TmdbClient, TmdbConfig, error_chain, one_line, secs};
use crate::model::catalog::ExportLine;

/// The file name TMDb publishes for `date`.
pub fn export_file_name(date: NaiveDate) -> String {
    format!("movie_ids_{}.json.gz", date.format("%m_%d_%Y"))
}

/// One parsed line, or a line that was not a valid export record.
#[derive(Debug)]
pub enum ExportRecord {
    Movie(ExportLine),
    Malformed,
}

/// Longest line read as a record; a longer one is skipped as malformed (an export line is ~100 bytes).
const MAX_LINE: u64 = 64 * 1024;

/// A streaming reader over one day's export.
pub struct ExportReader {
    reader: BufReader<Box<dyn AsyncRead + Send + Unpin>>,
    line: Vec<u8>,
}

impl ExportReader {
    /// Reads an export from any gzip byte stream (a download or a file).
    pub fn from_gzip(reader: impl AsyncRead + Send + Unpin + 'static) -> Self {
        let decoder = GzipDecoder::new(BufReader::with_capacity(64 * 1024, reader));
        let boxed: Box<dyn AsyncRead + Send + Unpin> = Box::new(decoder);
        ExportReader {
            reader: BufReader::with_capacity(64 * 1024, boxed),
            line: Vec::with_capacity(256),
        }
    }

    /// The next record, `None` at the end. Blank lines are skipped; an I/O or gzip error is an
    /// error. A line is made storable first (U+0000 removed, invalid UTF-8 replaced); one that
    /// still is not an export record, or is longer than 64 KiB, is `Malformed`, never an error.
    pub async fn next_record(&mut self) -> Result<Option<ExportRecord>, TmdbError> {
        loop {
            let read = self.read_chunk().await?;
            if read == 0 {
                return Ok(None);
            }
            if self.line.last() != Some(&b'\n') && read as u64 == MAX_LINE {
                self.skip_rest_of_line().await?;
                return Ok(Some(ExportRecord::Malformed));
            }
            let (text, _) = crate::sanitize::storable_json_text(&self.line);
            let trimmed = text.trim().trim_end_matches(',');
            if trimmed.is_empty() {
                continue;
            }
            return Ok(Some(match serde_json::from_str::<ExportLine>(trimmed) {
                Ok(movie) => ExportRecord::Movie(movie),
                Err(_) => ExportRecord::Malformed,
            }));
        }
    }

    /// Reads the next line, or its first 64 KiB, into `self.line`; returns the bytes read.
    async fn read_chunk(&mut self) -> Result<usize, TmdbError> {
        self.line.clear();
        (&mut self.reader)
            .take(MAX_LINE)
            .read_until(b'\n', &mut self.line)
            .await
            .map_err(read_error)
    }

    async fn skip_rest_of_line(&mut self) -> Result<(), TmdbError> {
        loop {
            let read = self.read_chunk().await?;
            if read == 0 || self.line.last() == Some(&b'\n') {
                return Ok(());
            }
        }
    }
}

/// A corrupt gzip stream is a data error (the file is broken; the next day's may be fine); any
/// other read failure is the network's.
fn read_error(e: std::io::Error) -> TmdbError {
    if e.kind() == std::io::ErrorKind::InvalidData {
        TmdbError::MalformedExport(format!(
            "the export is not a valid gzip stream: {}",
            error_chain(&e)
        ))
    } else {
        TmdbError::Network(format!("reading export: {}", error_chain(&e)))
    }
}

/// The two bytes every gzip file starts with.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Opens the export for `date` from `base_url`; `Ok(None)` when it is not published (404).
/// The download uses the client's export limits: `connect_timeout`, `export_idle_timeout` (no
/// data for that long fails it) and `export_timeout` (the whole file). A body that is not gzip
/// (a proxy's HTML page) is a data error ([`TmdbError::MalformedExport`]), not a network one.
pub async fn open_export(
    client: &TmdbClient,
    base_url: &str,
    date: NaiveDate,
) -> Result<Option<ExportReader>, TmdbError> {
    let file = export_file_name(date);
    let url = format!("{}/{file}", base_url.trim_end_matches('/'));
    let config = client.config().clone();
    let started = Instant::now();
    let stalled = move |e: reqwest::Error| -> String {
        if !e.is_timeout() {
            return client_redact(&config, &error_chain(&e.without_url()));
        }
        if e.is_connect() {
            format!(
                "could not connect within {} s (--connect-timeout-secs)",
                secs(config.connect_timeout)
            )
        } else if started.elapsed() + Duration::from_millis(50) >= config.export_timeout {
            format!(
                "the download took longer than {} s (--export-timeout-secs)",
                secs(config.export_timeout)
            )
        } else {
            format!(
                "no data for {} s (--export-idle-timeout-secs)",
                secs(config.export_idle_timeout)
            )
        }
    };
    let response = client
        .http()
        .get(&url)
        .send()
        .await
        .map_err(|e| TmdbError::Network(format!("downloading {file}: {}", stalled(e))))?;
    let status = response.status();
    if status == reqwest::StatusCode::NOT_FOUND || status == reqwest::StatusCode::FORBIDDEN {
        // files.tmdb.org answers 403 for a key that does not exist yet, as S3 does.
        return Ok(None);
    }
    if !status.is_success() {
        return Err(TmdbError::Api {
            status: status.as_u16(),
            code: None,
            message: format!("export {file} unavailable"),
        });
    }
    let mut stream = response
        .bytes_stream()
        .map_err(move |e| std::io::Error::other(stalled(e)))
        .boxed();
    // Look at the first bytes before handing the stream on: a non-gzip body is the server's
    // mistake, and says so.
    let mut head = BytesMut::new();
    while head.len() < GZIP_MAGIC.len() {
        match stream.try_next().await {
            Ok(Some(chunk)) => head.extend_from_slice(&chunk),
            Ok(None) => break,
            Err(e) => {
                return Err(TmdbError::Network(format!("downloading {file}: {e}")));
            }
        }
    }
    if !head.starts_with(&GZIP_MAGIC) {
        let start = String::from_utf8_lossy(&head[..head.len().min(80)]).into_owned();
        let start = one_line(&client.redact(&start), 60);
        return Err(TmdbError::MalformedExport(if head.is_empty() {
            format!("the export {file} is empty (a data error: it should be gzip)")
        } else {
            format!(
                "the export {file} is not gzip data (it starts with {start:?}): a data error, \
                 the server or a proxy sent something else"
            )
        }));
    }
    let stream = futures::stream::iter([Ok(head.freeze())]).chain(stream);
    Ok(Some(ExportReader::from_gzip(StreamReader::new(stream))))
}

fn client_redact(config: &TmdbConfig, text: &str) -> String {
    crate::redact::redact(text, &[config.api_key.expose()])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_name_uses_month_day_year() {
        let d = NaiveDate::from_ymd_opt(2026, 3, 7).unwrap();
        assert_eq!(export_file_name(d), "movie_ids_03_07_2026.json.gz");
    }
}
