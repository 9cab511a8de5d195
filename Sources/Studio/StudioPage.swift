import Hummingbird
import NIOCore

/// The page: one HTML file, its style sheet and its scripts (one concern each: common helpers,
/// charts, the run list, a run's page, the playground, the attention explorer, the wiring),
/// compiled into the binary (Page/), so that the studio needs no files and no network. The content
/// security policy lets the page load nothing from anywhere else.
enum StudioPage {
    private static let script = "text/javascript; charset=utf-8"

    static let files: [String: (bytes: [UInt8], type: String)] = [
        "/": (PackageResources.index_html, "text/html; charset=utf-8"),
        "/studio.css": (PackageResources.studio_css, "text/css; charset=utf-8"),
        "/common.js": (PackageResources.common_js, script),
        "/charts.js": (PackageResources.charts_js, script),
        "/runs.js": (PackageResources.runs_js, script),
        "/run.js": (PackageResources.run_js, script),
        "/playground.js": (PackageResources.playground_js, script),
        "/attention.js": (PackageResources.attention_js, script),
        "/studio.js": (PackageResources.studio_js, script),
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
