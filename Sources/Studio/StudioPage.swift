import Hummingbird
import NIOCore

/// The page: one HTML file, its style sheet and its script, compiled into the binary (Page/), so
/// that the studio needs no files and no network. The content security policy lets the page load
/// nothing from anywhere else.
enum StudioPage {
    static let files: [String: (bytes: [UInt8], type: String)] = [
        "/": (PackageResources.index_html, "text/html; charset=utf-8"),
        "/studio.css": (PackageResources.studio_css, "text/css; charset=utf-8"),
        "/studio.js": (PackageResources.studio_js, "text/javascript; charset=utf-8"),
    ]

    static let policy =
        "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; frame-ancestors 'none'"

    static func addRoutes(to router: Router<some RequestContext>) {
        for (path, file) in files {
            router.get(RouterPath(path)) { _, _ in
                Response(
                    status: .ok,
                    headers: [
                        .contentType: file.type, .cacheControl: "no-cache", .contentSecurityPolicy: policy,
                        .xContentTypeOptions: "nosniff",
                    ],
                    body: .init(byteBuffer: ByteBuffer(bytes: file.bytes)))
            }
        }
    }
}
