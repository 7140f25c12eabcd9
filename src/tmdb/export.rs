//! TMDb's daily ID export (`movie_ids_MM_DD_YYYY.json.gz`): downloaded and parsed as a stream, one
//! JSON object per line, never held whole in memory.

use async_compression::tokio::bufread::GzipDecoder;
use chrono::NaiveDate;
use futures::TryStreamExt;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, BufReader};
use tokio_util::io::StreamReader;

use super::TmdbError;
use super::client::error_chain;
use super::models::ExportLine;

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
            self.line.clear();
            let read = (&mut self.reader)
                .take(MAX_LINE)
                .read_until(b'\n', &mut self.line)
                .await
                .map_err(read_error)?;
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

    async fn skip_rest_of_line(&mut self) -> Result<(), TmdbError> {
        loop {
            self.line.clear();
            let read = (&mut self.reader)
                .take(MAX_LINE)
                .read_until(b'\n', &mut self.line)
                .await
                .map_err(read_error)?;
            if read == 0 || self.line.last() == Some(&b'\n') {
                return Ok(());
            }
        }
    }
}

fn read_error(e: std::io::Error) -> TmdbError {
    TmdbError::Network(format!("reading export: {}", error_chain(&e)))
}

/// Opens the export for `date` from `base_url`; `Ok(None)` when it is not published (404).
pub async fn open_export(
    http: &reqwest::Client,
    base_url: &str,
    date: NaiveDate,
) -> Result<Option<ExportReader>, TmdbError> {
    let url = format!(
        "{}/{}",
        base_url.trim_end_matches('/'),
        export_file_name(date)
    );
    let response = http
        .get(&url)
        // The export is tens of MB; the client's per-request timeout would cut a slow download.
        .timeout(std::time::Duration::from_secs(1800))
        .send()
        .await
        .map_err(|e| TmdbError::Network(error_chain(&e.without_url())))?;
    let status = response.status();
    if status == reqwest::StatusCode::NOT_FOUND || status == reqwest::StatusCode::FORBIDDEN {
        // files.tmdb.org answers 403 for a key that does not exist yet, as S3 does.
        return Ok(None);
    }
    if !status.is_success() {
        return Err(TmdbError::Api {
            status: status.as_u16(),
            code: None,
            message: format!("export {} unavailable", export_file_name(date)),
        });
    }
    let stream = response.bytes_stream().map_err(std::io::Error::other);
    Ok(Some(ExportReader::from_gzip(StreamReader::new(stream))))
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
