// WWW-Authenticate parsing and the Docker token dance, with a fake token server behind
// the authenticator's transport callback.

#include "storage/registry_auth.h"

#include <gtest/gtest.h>

#include <map>

namespace {

using berth::Result;
using berth::storage::AuthHttpReply;
using berth::storage::AuthHttpRequest;
using berth::storage::parse_www_authenticate;
using berth::storage::RegistryAuthenticator;
using berth::storage::RegistryCredentials;

TEST(WwwAuthenticate, DockerHubBearerChallenge) {
  auto c = parse_www_authenticate(
      {R"(Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull")"});
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].scheme, "bearer");
  EXPECT_EQ(c[0].params.at("realm"), "https://auth.docker.io/token");
  EXPECT_EQ(c[0].params.at("service"), "registry.docker.io");
  EXPECT_EQ(c[0].params.at("scope"), "repository:library/busybox:pull");
}

TEST(WwwAuthenticate, QuotedCommasAndEscapes) {
  auto c = parse_www_authenticate(
      {R"(Bearer realm="https://a.example/token?x=1,y=2", scope="repository:a/b:pull,push", error="say \"hi\"")"});
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].params.at("realm"), "https://a.example/token?x=1,y=2");
  EXPECT_EQ(c[0].params.at("scope"), "repository:a/b:pull,push");
  EXPECT_EQ(c[0].params.at("error"), "say \"hi\"");
}

TEST(WwwAuthenticate, SeveralChallengesInOneValueAndAcrossValues) {
  auto c = parse_www_authenticate({R"(Basic realm="basic realm", Bearer realm="https://t.example/token",service=reg)",
                                   R"(Negotiate abc123==, NTLM)"});
  ASSERT_EQ(c.size(), 4u);
  EXPECT_EQ(c[0].scheme, "basic");
  EXPECT_EQ(c[0].params.at("realm"), "basic realm");
  EXPECT_EQ(c[1].scheme, "bearer");
  EXPECT_EQ(c[1].params.at("realm"), "https://t.example/token");
  EXPECT_EQ(c[1].params.at("service"), "reg");
  EXPECT_EQ(c[2].scheme, "negotiate");
  EXPECT_TRUE(c[2].params.empty());
  EXPECT_EQ(c[3].scheme, "ntlm");
}

TEST(WwwAuthenticate, CaseAndSpacingAreForgiven) {
  auto c = parse_www_authenticate({R"(  BEARER   Realm = "https://x/token" ,  SERVICE=svc  )"});
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].scheme, "bearer");
  EXPECT_EQ(c[0].params.at("realm"), "https://x/token");
  EXPECT_EQ(c[0].params.at("service"), "svc");
}

TEST(WwwAuthenticate, GarbageDoesNotCrash) {
  for (const char* s : {"", ",,,", "=", "\"", "Bearer realm=\"unterminated", "Bearer =x", "Basic ===="}) {
    (void)parse_www_authenticate({s});
  }
  auto c = parse_www_authenticate({"Bearer realm=\"unterminated"});
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].params.at("realm"), "unterminated");
}

TEST(RegistryAuthHelpers, BasicAuthAndUrlEncoding) {
  EXPECT_EQ(berth::storage::basic_authorization("user", "p:ss"), "Basic dXNlcjpwOnNz");
  EXPECT_EQ(berth::storage::url_encode("repository:a/b:pull x~"), "repository%3Aa%2Fb%3Apull%20x~");
}

TEST(RegistryAuthHelpers, TokenReplies) {
  using berth::storage::parse_token_reply;
  auto a = parse_token_reply(R"({"token":"t1","expires_in":300})");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->token, "t1");
  EXPECT_EQ(a->expires_in, std::chrono::seconds(300));
  auto b = parse_token_reply(R"({"access_token":"t2","expires_in":5,"refresh_token":"r"})");
  ASSERT_TRUE(b);
  EXPECT_EQ(b->token, "t2");
  EXPECT_EQ(b->expires_in, std::chrono::seconds(60));  // the spec's minimum
  EXPECT_EQ(b->refresh_token, "r");
  auto c = parse_token_reply(R"({"token":"t3"})");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->expires_in, std::chrono::seconds(60));
  EXPECT_FALSE(parse_token_reply(R"({"expires_in":60})"));
  EXPECT_FALSE(parse_token_reply("<html>"));
  EXPECT_FALSE(parse_token_reply(R"({"token":"a\r\nX-Evil: 1"})"));
}

TEST(RegistryAuthHelpers, ErrorMessages) {
  using berth::storage::registry_error_message;
  EXPECT_EQ(
      registry_error_message(R"({"errors":[{"code":"UNAUTHORIZED","message":"authentication required","detail":[]}]})"),
      "authentication required");
  EXPECT_EQ(registry_error_message(R"({"errors":[{"code":"DENIED"},{"code":"X","message":"two"}]})"), "denied; two");
  EXPECT_EQ(registry_error_message(R"({"details":"incorrect username or password"})"),
            "incorrect username or password");
  EXPECT_EQ(registry_error_message("plain\ntext"), "plain text");
}

// A token server double: records requests, answers from a function.
struct FakeTokenServer {
  std::vector<AuthHttpRequest> seen;
  std::function<AuthHttpReply(const AuthHttpRequest&)> answer = [](const AuthHttpRequest&) {
    return AuthHttpReply{200, R"({"token":"tok-1","expires_in":120})"};
  };
  berth::storage::AuthTransport transport() {
    return [this](const AuthHttpRequest& r) -> Result<AuthHttpReply> {
      seen.push_back(r);
      return answer(r);
    };
  }
};

const std::string kEndpoint = "https://reg.example";
const std::vector<std::string> kBearer = {
    R"(Bearer realm="https://auth.example/token",service="reg.example",scope="repository:team/app:pull")"};

struct FakeClock {
  std::chrono::steady_clock::time_point now{std::chrono::hours(1000)};
  std::function<std::chrono::steady_clock::time_point()> fn() {
    return [this] { return now; };
  }
};

TEST(RegistryAuthenticator, AnonymousBearerTokenIsFetchedCachedAndExpires) {
  FakeClock clock;
  RegistryAuthenticator auth(clock.fn());
  FakeTokenServer server;
  EXPECT_EQ(auth.authorization_for(kEndpoint, "team/app", {}), "");
  auto header = auth.answer_challenge(kEndpoint, "team/app", kBearer, {}, server.transport());
  ASSERT_TRUE(header) << header.error().message;
  EXPECT_EQ(*header, "Bearer tok-1");
  ASSERT_EQ(server.seen.size(), 1u);
  EXPECT_EQ(server.seen[0].method, "GET");
  EXPECT_EQ(server.seen[0].url, "https://auth.example/token?service=reg.example&scope=repository%3Ateam%2Fapp%3Apull");
  EXPECT_TRUE(server.seen[0].headers.empty());

  EXPECT_EQ(auth.authorization_for(kEndpoint, "team/app", {}), "Bearer tok-1");
  EXPECT_EQ(auth.authorization_for(kEndpoint, "team/other", {}), "");  // another scope
  EXPECT_EQ(auth.authorization_for("https://mirror.example", "team/app", {}), "");
  clock.now += std::chrono::seconds(100);
  EXPECT_EQ(auth.authorization_for(kEndpoint, "team/app", {}), "Bearer tok-1");
  clock.now += std::chrono::seconds(15);  // past 120 s minus the renewal slack
  EXPECT_EQ(auth.authorization_for(kEndpoint, "team/app", {}), "");
}

TEST(RegistryAuthenticator, BasicCredentialsGoToTheTokenServer) {
  RegistryAuthenticator auth;
  FakeTokenServer server;
  RegistryCredentials creds{"alice", "s3cret", "", ""};
  auto header = auth.answer_challenge(kEndpoint, "team/app", kBearer, creds, server.transport());
  ASSERT_TRUE(header);
  ASSERT_EQ(server.seen.size(), 1u);
  EXPECT_NE(server.seen[0].url.find("&account=alice"), std::string::npos);
  EXPECT_EQ(server.seen[0].headers, std::vector<std::string>{"Authorization: Basic YWxpY2U6czNjcmV0"});
  // Other credentials never see alice's token.
  EXPECT_EQ(auth.authorization_for(kEndpoint, "team/app", creds), "Bearer tok-1");
  EXPECT_EQ(auth.authorization_for(kEndpoint, "team/app", {"bob", "x", "", ""}), "");
  EXPECT_EQ(auth.authorization_for(kEndpoint, "team/app", {"alice", "other", "", ""}), "");
}

TEST(RegistryAuthenticator, RefusedCredentialsAreEacces) {
  RegistryAuthenticator auth;
  FakeTokenServer server;
  server.answer = [](const AuthHttpRequest&) {
    return AuthHttpReply{401, R"({"details":"incorrect username or password"})"};
  };
  auto header = auth.answer_challenge(kEndpoint, "team/app", kBearer, {"alice", "bad", "", ""}, server.transport());
  ASSERT_FALSE(header);
  EXPECT_EQ(header.error().code, EACCES);
  EXPECT_NE(header.error().message.find("incorrect username or password"), std::string::npos);
  EXPECT_NE(header.error().message.find("https://auth.example/token"), std::string::npos);
}

TEST(RegistryAuthenticator, ChallengeScopeIsAddedToOurs) {
  RegistryAuthenticator auth;
  FakeTokenServer server;
  auto header = auth.answer_challenge(
      kEndpoint, "team/app", {R"(Bearer realm="https://auth.example/token",scope="repository:team/base:pull")"}, {},
      server.transport());
  ASSERT_TRUE(header);
  EXPECT_EQ(server.seen[0].url,
            "https://auth.example/token?scope=repository%3Ateam%2Fapp%3Apull&scope=repository%3Ateam%2Fbase%3Apull");
}

TEST(RegistryAuthenticator, IdentityTokenUsesOauthRefreshGrantWithFallback) {
  RegistryAuthenticator auth;
  FakeTokenServer server;
  server.answer = [](const AuthHttpRequest& r) {
    if (r.method == "POST") return AuthHttpReply{200, R"({"access_token":"oauth-tok","expires_in":300})"};
    return AuthHttpReply{500, ""};
  };
  RegistryCredentials creds{"", "", "refresh-abc", ""};
  auto header = auth.answer_challenge(kEndpoint, "team/app", kBearer, creds, server.transport());
  ASSERT_TRUE(header) << header.error().message;
  EXPECT_EQ(*header, "Bearer oauth-tok");
  ASSERT_EQ(server.seen.size(), 1u);
  EXPECT_EQ(server.seen[0].url, "https://auth.example/token");
  EXPECT_NE(server.seen[0].body.find("grant_type=refresh_token"), std::string::npos);
  EXPECT_NE(server.seen[0].body.find("refresh_token=refresh-abc"), std::string::npos);
  EXPECT_NE(server.seen[0].body.find("service=reg.example"), std::string::npos);

  // A token server without the OAuth2 endpoint: the plain GET follows.
  FakeTokenServer old;
  old.answer = [](const AuthHttpRequest& r) {
    if (r.method == "POST") return AuthHttpReply{405, ""};
    return AuthHttpReply{200, R"({"token":"get-tok"})"};
  };
  RegistryAuthenticator auth2;
  auto header2 = auth2.answer_challenge(kEndpoint, "team/app", kBearer, creds, old.transport());
  ASSERT_TRUE(header2) << header2.error().message;
  EXPECT_EQ(*header2, "Bearer get-tok");
  EXPECT_EQ(old.seen.size(), 2u);
}

TEST(RegistryAuthenticator, RegistryTokenIsSentAsIs) {
  RegistryAuthenticator auth;
  FakeTokenServer server;
  RegistryCredentials creds{"", "", "", "given-token"};
  EXPECT_EQ(auth.authorization_for(kEndpoint, "team/app", creds), "Bearer given-token");
  auto header = auth.answer_challenge(kEndpoint, "team/app", kBearer, creds, server.transport());
  ASSERT_FALSE(header);
  EXPECT_EQ(header.error().code, EACCES);
  EXPECT_TRUE(server.seen.empty());
}

TEST(RegistryAuthenticator, BasicChallenge) {
  RegistryAuthenticator auth;
  FakeTokenServer server;
  const std::vector<std::string> basic = {R"(Basic realm="Registry Realm")"};
  auto none = auth.answer_challenge(kEndpoint, "team/app", basic, {}, server.transport());
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().code, EACCES);

  RegistryCredentials creds{"alice", "pw", "", ""};
  auto header = auth.answer_challenge(kEndpoint, "team/app", basic, creds, server.transport());
  ASSERT_TRUE(header);
  EXPECT_EQ(*header, "Basic YWxpY2U6cHc=");
  EXPECT_TRUE(server.seen.empty());
  // Known to want Basic now: sent up front, for any repository of that endpoint.
  EXPECT_EQ(auth.authorization_for(kEndpoint, "team/other", creds), "Basic YWxpY2U6cHc=");
  EXPECT_EQ(auth.authorization_for("https://else.example", "team/other", creds), "");
}

TEST(RegistryAuthenticator, NoOrUnknownChallenge) {
  RegistryAuthenticator auth;
  FakeTokenServer server;
  auto a = auth.answer_challenge(kEndpoint, "r", {}, {}, server.transport());
  ASSERT_FALSE(a);
  EXPECT_EQ(a.error().code, EACCES);
  auto b = auth.answer_challenge(kEndpoint, "r", {"Negotiate"}, {}, server.transport());
  ASSERT_FALSE(b);
  EXPECT_NE(b.error().message.find("negotiate"), std::string::npos);
  auto c = auth.answer_challenge(kEndpoint, "r", {R"(Bearer realm="file:///etc/passwd")"}, {}, server.transport());
  ASSERT_FALSE(c);
  EXPECT_TRUE(server.seen.empty());
}

TEST(RegistryAuthenticator, ANewChallengeDropsTheCachedToken) {
  RegistryAuthenticator auth;
  FakeTokenServer server;
  int n = 0;
  server.answer = [&n](const AuthHttpRequest&) {
    return AuthHttpReply{200, R"({"token":"tok-)" + std::to_string(++n) + R"("})"};
  };
  ASSERT_TRUE(auth.answer_challenge(kEndpoint, "team/app", kBearer, {}, server.transport()));
  EXPECT_EQ(auth.authorization_for(kEndpoint, "team/app", {}), "Bearer tok-1");
  server.answer = [](const AuthHttpRequest&) { return AuthHttpReply{503, "down"}; };
  auto failed = auth.answer_challenge(kEndpoint, "team/app", kBearer, {}, server.transport());
  ASSERT_FALSE(failed);
  EXPECT_EQ(failed.error().code, EIO);
  EXPECT_EQ(auth.authorization_for(kEndpoint, "team/app", {}), "");
}

}  // namespace
