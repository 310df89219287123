#include "collector/notify/notify_channel.h"

#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <mutex>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "collector/notify/child_process.h"
#include "common/escape.h"

namespace netvigil::collector {
namespace {

// The webhook is libcurl (OpenSSL flavour) rather than cpp-httplib's
// client: it verifies the peer against the system store or a CA file and
// says why a certificate was refused ("SSL certificate problem: self-signed
// certificate"), bounds the whole exchange with one timeout, and can be
// kept to http/https with no redirects; cpp-httplib 0.11 would need each
// of those built by hand.
class WebhookChannel final : public NotifyChannel {
 public:
  WebhookChannel(NotifyChannelConfig config, std::string header_value,
                 std::string hmac_key)
      : config_(std::move(config)),
        header_value_(std::move(header_value)),
        hmac_key_(std::move(hmac_key)) {
    static std::once_flag init;
    std::call_once(init, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  }

  absl::StatusOr<std::string> Send(const NotifyMessage& m) override {
    CURL* curl = curl_easy_init();
    if (curl == nullptr) return absl::InternalError("curl_easy_init failed");
    struct curl_slist* headers = nullptr;
    headers = curl_slist_append(headers, "Content-Type: application/json");
    headers = curl_slist_append(headers, "User-Agent: netvigil-collector");
    // No "Expect: 100-continue" for a large body (a digest): receivers
    // that do not answer it would cost a second each.
    headers = curl_slist_append(headers, "Expect:");
    // The event id is the receiver's idempotency key: a message resent
    // after a crash carries the same one.
    headers = curl_slist_append(
        headers, absl::StrCat("X-Netvigil-Event-Id: ", m.event_id).c_str());
    headers = curl_slist_append(
        headers, absl::StrCat("Idempotency-Key: ", m.event_id).c_str());
    if (!config_.header_name.empty()) {
      headers = curl_slist_append(
          headers,
          absl::StrCat(config_.header_name, ": ", header_value_).c_str());
    }
    if (!hmac_key_.empty()) {
      unsigned char mac[EVP_MAX_MD_SIZE];
      unsigned int len = 0;
      HMAC(EVP_sha256(), hmac_key_.data(), static_cast<int>(hmac_key_.size()),
           reinterpret_cast<const unsigned char*>(m.json.data()), m.json.size(),
           mac, &len);
      headers = curl_slist_append(
          headers, absl::StrCat(config_.hmac_header, ": sha256=",
                                absl::BytesToHexString(absl::string_view(
                                    reinterpret_cast<const char*>(mac), len)))
                       .c_str());
    }
    std::string answer;
    char errbuf[CURL_ERROR_SIZE] = {0};
    curl_easy_setopt(curl, CURLOPT_URL, config_.url.c_str());
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, m.json.c_str());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE,
                     static_cast<long>(m.json.size()));
    curl_easy_setopt(
        curl, CURLOPT_TIMEOUT_MS,
        static_cast<long>(absl::ToInt64Milliseconds(config_.timeout)));
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 2L);
    if (!config_.ca_file.empty()) {
      curl_easy_setopt(curl, CURLOPT_CAINFO, config_.ca_file.c_str());
    }
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &WebhookChannel::Collect);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &answer);
    const CURLcode rc = curl_easy_perform(curl);
    long code = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
    curl_slist_free_all(headers);
    curl_easy_cleanup(curl);
    if (rc != CURLE_OK) {
      return absl::UnavailableError(Escape(
          absl::StrCat("POST failed: ",
                       errbuf[0] != '\0' ? errbuf : curl_easy_strerror(rc))));
    }
    std::string head = answer.substr(0, 200);
    std::string text = absl::StrCat("HTTP ", code, ": ", Escape(head));
    if (code < 200 || code > 299) return absl::UnavailableError(text);
    return text;
  }

 private:
  // Keeps the first bytes of the answer; a receiver that talks on and on
  // is cut off (the transfer fails past 64 KiB).
  static size_t Collect(char* data, size_t size, size_t n, void* user) {
    auto* out = static_cast<std::string*>(user);
    if (out->size() + size * n > 64 * 1024) return 0;
    out->append(data, size * n);
    return size * n;
  }

  const NotifyChannelConfig config_;
  const std::string header_value_;  // a secret: never logged
  const std::string hmac_key_;      // a secret: never logged
};

// The event as JSON on stdin of a program run without a shell.
class CommandChannel final : public NotifyChannel {
 public:
  explicit CommandChannel(NotifyChannelConfig config)
      : config_(std::move(config)) {}

  absl::StatusOr<std::string> Send(const NotifyMessage& m) override {
    absl::StatusOr<ChildResult> r =
        RunChild(config_.argv, m.json, config_.timeout);
    if (!r.ok()) return r.status();
    std::string what = DescribeChild(*r, config_.timeout);
    if (r->timed_out || r->signal != 0 || r->exit_status != 0) {
      return absl::UnavailableError(what);
    }
    return what;
  }

 private:
  const NotifyChannelConfig config_;
};

// RFC 5322 through the local `sendmail -t -i`. Every header value is
// Escape()d (common/escape.h writes CR and LF as \r and \n), so alert text
// cannot end a header line and start another.
class SendmailChannel final : public NotifyChannel {
 public:
  explicit SendmailChannel(NotifyChannelConfig config)
      : config_(std::move(config)) {}

  absl::StatusOr<std::string> Send(const NotifyMessage& m) override {
    std::string mail;
    absl::StrAppend(&mail, "From: ", Escape(config_.from), "\n");
    absl::StrAppend(&mail, "To: ", Escape(absl::StrJoin(config_.to, ", ")),
                    "\n");
    // Already escaped (NotifyMessage): no CR or LF can be in it.
    absl::StrAppend(&mail, "Subject: ", m.subject, "\n");
    absl::StrAppend(&mail, "Date: ",
                    absl::FormatTime("%a, %d %b %Y %H:%M:%S +0000", absl::Now(),
                                     absl::UTCTimeZone()),
                    "\n");
    absl::StrAppend(&mail, "Message-ID: <", Escape(m.event_id), "@netvigil>\n");
    absl::StrAppend(&mail, "X-Netvigil-Event-Id: ", Escape(m.event_id), "\n");
    absl::StrAppend(&mail,
                    "MIME-Version: 1.0\n"
                    "Content-Type: text/plain; charset=utf-8\n"
                    "Content-Transfer-Encoding: 8bit\n\n");
    absl::StrAppend(&mail, m.text);
    absl::StatusOr<ChildResult> r =
        RunChild({config_.sendmail_path, "-t", "-i"}, mail, config_.timeout);
    if (!r.ok()) return r.status();
    std::string what = DescribeChild(*r, config_.timeout);
    if (r->timed_out || r->signal != 0 || r->exit_status != 0) {
      return absl::UnavailableError(absl::StrCat("sendmail: ", what));
    }
    return absl::StrCat("sendmail: ", what);
  }

 private:
  const NotifyChannelConfig config_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<NotifyChannel>> MakeChannel(
    const NotifyChannelConfig& config) {
  if (config.type == "webhook") {
    absl::StatusOr<std::string> header = ReadNotifySecret(config.header_value);
    if (!header.ok()) {
      return absl::Status(header.status().code(),
                          absl::StrCat("channel ", config.name,
                                       " header: ", header.status().message()));
    }
    absl::StatusOr<std::string> key = ReadNotifySecret(config.hmac_secret);
    if (!key.ok()) {
      return absl::Status(key.status().code(),
                          absl::StrCat("channel ", config.name,
                                       " hmac: ", key.status().message()));
    }
    if (header->find_first_of("\r\n") != std::string::npos) {
      return absl::InvalidArgumentError(absl::StrCat(
          "channel ", config.name, " header: the value holds a line break"));
    }
    return std::make_unique<WebhookChannel>(config, *header, *key);
  }
  if (config.type == "command") return std::make_unique<CommandChannel>(config);
  if (config.type == "sendmail") {
    return std::make_unique<SendmailChannel>(config);
  }
  return absl::InvalidArgumentError(
      absl::StrCat("channel ", config.name, ": unknown type ", config.type));
}

}  // namespace netvigil::collector
