import Datasets
import FileFormats
import Foundation
import GAN
import HTTPTypes
import Hummingbird

/// Who may use the studio. With a token (required off loopback), every request must carry it, in
/// the `sagan_token` cookie, an `Authorization: Bearer` header or a `token` query parameter; the
/// page is opened with the parameter and gets the cookie, which its later requests carry. Without a
/// token the server listens on loopback only and refuses requests whose Host is not a loopback name,
/// so that a web page elsewhere cannot reach it through a DNS name rebound to 127.0.0.1.
struct AccessControl<Context: RequestContext>: RouterMiddleware {
    let token: String?
    let loopbackOnly: Bool

    static var cookieName: String { "sagan_token" }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response)
        async throws -> Response
    {
        guard let token else {
            guard loopbackOnly, Self.isLoopback(host: request.head.authority ?? "") else {
                throw HTTPError(.forbidden, message: "this studio answers requests to localhost or 127.0.0.1 only")
            }
            return try await next(request, context)
        }
        let fromQuery = request.uri.queryParameters["token"].map(String.init)
        let candidates = [
            fromQuery, request.headers[.authorization].flatMap(Self.bearer), Self.cookie(request.headers[.cookie]),
        ]
        guard candidates.contains(where: { $0.map { Self.equal($0, token) } ?? false }) else {
            throw HTTPError(.unauthorized, message: "this studio needs its token: open the address it printed")
        }
        var response = try await next(request, context)
        if let fromQuery, Self.equal(fromQuery, token) {
            response.headers.append(
                HTTPField(name: .setCookie, value: "\(Self.cookieName)=\(token); Path=/; HttpOnly; SameSite=Strict"))
        }
        return response
    }

    /// "localhost:7860", "127.0.0.1", "[::1]:80" → true; "localhost:evil.example", "localhost:" and
    /// "[::1]x" → false: what follows the name must be nothing or ":" and a port number.
    static func isLoopback(host: String) -> Bool {
        let text = host.lowercased()
        var name = text
        var port: Substring?
        if text.hasPrefix("[") {
            guard let end = text.firstIndex(of: "]") else { return false }
            name = String(text[text.index(after: text.startIndex)..<end])
            let rest = text[text.index(after: end)...]
            if !rest.isEmpty {
                guard rest.hasPrefix(":") else { return false }
                port = rest.dropFirst()
            }
        } else if let colon = text.firstIndex(of: ":") {
            name = String(text[..<colon])
            port = text[text.index(after: colon)...]
        }
        if let port, port.isEmpty || port.count > 5 || !port.allSatisfy(\.isASCII) || UInt16(port) == nil {
            return false
        }
        return StudioOptions.loopbackHosts.contains(name)
    }

    static func bearer(_ value: String) -> String? {
        value.hasPrefix("Bearer ") ? String(value.dropFirst("Bearer ".count)) : nil
    }

    static func cookie(_ header: String?) -> String? {
        header?.split(separator: ";").lazy.map { $0.trimmingCharacters(in: .whitespaces) }
            .first { $0.hasPrefix(cookieName + "=") }.map { String($0.dropFirst(cookieName.count + 1)) }
    }

    /// Compares in time independent of where the strings differ.
    static func equal(_ a: String, _ b: String) -> Bool {
        let (x, y) = (Array(a.utf8), Array(b.utf8))
        guard x.count == y.count else { return false }
        return zip(x, y).reduce(UInt8(0)) { $0 | ($1.0 ^ $1.1) } == 0
    }
}

/// What a browser must not be able to do to the studio from another site, and what every answer
/// tells the browser: state-changing requests (POST) whose `Origin` or `Sec-Fetch-Site` says they
/// come from another site get 403 (a form or script elsewhere could otherwise post to it; a plain
/// client sends neither header); every response carries the content security policy and nosniff.
struct BrowserSafety<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response)
        async throws -> Response
    {
        if request.method != .get && request.method != .head {
            let site = request.headers[HTTPField.Name("Sec-Fetch-Site")!]
            let origin = request.headers[HTTPField.Name("Origin")!]
            let own = request.head.authority.map { "http://" + $0.lowercased() }
            if site.map({ $0 != "same-origin" && $0 != "none" }) == true
                || origin.map({ $0.lowercased() != own }) == true
            {
                throw HTTPError(.forbidden, message: "requests from another site may not change anything here")
            }
        }
        do {
            var response = try await next(request, context)
            Self.addHeaders(&response.headers)
            return response
        } catch let error as any HTTPResponseError {
            var response = try error.response(from: request, context: context)
            Self.addHeaders(&response.headers)
            return response
        }
    }

    static func addHeaders(_ headers: inout HTTPFields) {
        if headers[.contentSecurityPolicy] == nil { headers[.contentSecurityPolicy] = StudioPage.policy }
        headers[.xContentTypeOptions] = "nosniff"
    }
}

/// Turns the errors of bad requests into 4xx answers with their message (JSON {"error": {"message"}}),
/// and anything else into a 500 with its description, never a dropped connection.
struct ErrorMessages<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response)
        async throws -> Response
    {
        do {
            return try await next(request, context)
        } catch let error as any HTTPResponseError {
            throw error
        } catch {
            throw HTTPError(
                Self.isBadInput(error) ? .unprocessableContent : .internalServerError, message: "\(error)")
        }
    }

    /// The engine's own errors about files and settings (unreadable checkpoints, images, classes).
    static func isBadInput(_ error: any Error) -> Bool {
        error is SafeTensorsError || error is ConfigurationError || error is DataError
    }
}
