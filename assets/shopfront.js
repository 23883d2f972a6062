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
        },
        /* Search by photo, Back or reload: photo-last (session storage) holds the last
           search; pass it on to be shown again only while the results area still shows
           its placeholder, so a search just made is not drawn twice. */
        restore_gate: function (saved, shown) {
            var props = shown && shown.props;
            if (!saved || !props || props.id !== "photo-placeholder") {
                return window.dash_clientside.no_update;
            }
            return saved;
        },
        /* Search by photo: an image pasted anywhere on the page (Ctrl+V) becomes the
           upload's contents, as if it had been dropped; a pasted file that is not an image
           or is over maxBytes is reported like a refused upload (photo-rejected.data). */
        paste_photo: function (id, maxBytes) {
            if (!window.lookalikePasteListener) {  // one document-level listener
                window.lookalikePasteListener = true;
                document.addEventListener("paste", function (e) {
                    var data = e.clipboardData;
                    if (!data || !document.getElementById(id)) { return; }  // another page
                    var files = [], i, f;
                    for (i = 0; data.files && i < data.files.length; i++) {
                        files.push(data.files[i]);
                    }
                    for (i = 0; !files.length && data.items && i < data.items.length; i++) {
                        f = data.items[i].kind === "file" && data.items[i].getAsFile();
                        if (f) { files.push(f); }
                    }
                    if (!files.length) { return; }  // text: left to the page
                    e.preventDefault();
                    var image = files.filter(function (x) {
                        return (x.type || "").indexOf("image/") === 0;
                    })[0];
                    f = image || files[0];
                    if (!image || f.size > maxBytes) {
                        window.dash_clientside.set_props("photo-rejected", {data: {
                            name: f.name, size: f.size, type: f.type || "", at: Date.now()}});
                        return;
                    }
                    var reader = new FileReader();
                    reader.onload = function () {
                        window.dash_clientside.set_props(id, {
                            contents: reader.result, filename: f.name || "pasted image"});
                    };
                    reader.readAsDataURL(f);
                });
            }
            return window.dash_clientside.no_update;
        }
    }
});
