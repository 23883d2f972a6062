/* Client-side callbacks of the shop front (kept out of inline scripts for the CSP). */
window.dash_clientside = Object.assign({}, window.dash_clientside, {
    shopfront: {
        /* Each page's own <title>, as the server sends it on a first visit. */
        set_title: function (title) {
            if (typeof title === "string" && title) { document.title = title; }
            return window.dash_clientside.no_update;
        },
        /* Search by photo: dcc.Upload drops a file that is not an image or is over
           max_size without telling anyone; this reports it (photo-rejected.data). */
        upload_guard: function (id, maxBytes) {
            if (!window.lookalikeUploadGuard) {  // one document-level listener, whatever re-renders
                window.lookalikeUploadGuard = true;
                var check = function (target, files) {
                    if (!files || !files.length || !target || !target.closest
                        || !target.closest("#" + id)) { return; }
                    var f = files[0];
                    if ((f.type || "").indexOf("image/") !== 0 || f.size > maxBytes) {
                        window.dash_clientside.set_props("photo-rejected", {data: {
                            name: f.name, size: f.size, type: f.type || "", at: Date.now()}});
                    }
                };
                document.addEventListener("drop", function (e) {
                    check(e.target, e.dataTransfer && e.dataTransfer.files);
                }, true);
                document.addEventListener("change", function (e) {
                    check(e.target, e.target && e.target.files);
                }, true);
            }
            return window.dash_clientside.no_update;
        }
    }
});
