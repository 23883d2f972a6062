/* Client-side callbacks of the shop front (kept out of inline scripts for the CSP). */
window.dash_clientside = Object.assign({}, window.dash_clientside, {
    shopfront: {
        /* Each page's own <title>, as the server sends it on a first visit. */
        /* After new catalog results (a page link): if their top is above the screen,
           scroll it into view, so the shopper sees the first card of the new page. */
        results_into_view: function () {
            var count = document.getElementById("catalog-count");
            if (count && count.getBoundingClientRect().top < 0) {
                count.scrollIntoView({block: "start"});
            }
            return window.dash_clientside.no_update;
        },
        set_title: function (title) {
            if (typeof title === "string" && title) { document.title = title; }
            window.lookalikeA11y.pageShown();  // runs after each page render
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

/* Accessibility: focus on the new page's heading after client-side navigation, the skip
   link, names and tab stops for Dash's dropdowns and upload. */
(function () {
    var a11y = window.lookalikeA11y = {path: null};
    var labelCount = 0;

    /* Called after each page render (set_title): when the path changed, and it is not the
       first load, focus the new page's first h1, so a screen reader reads it and Tab goes
       on from there. The catalog's query string changing (typing in its search box) keeps
       the path: focus stays where it is. */
    a11y.pageShown = function () {
        var path = window.location.pathname;
        var navigated = a11y.path !== null && a11y.path !== path;
        a11y.path = path;
        if (navigated) { requestAnimationFrame(function () { focusHeading(path, 0); }); }
        if (navigated && window.location.hash) {  // "Find similar": /product/<id>#similar-products
            requestAnimationFrame(function () { scrollToHash(path, 0); });
        }
    };

    function scrollToHash(path, tries) {
        if (window.location.pathname !== path) { return; }
        var target = document.getElementById(decodeURIComponent(window.location.hash.slice(1)));
        if (target) {
            target.scrollIntoView({block: "start"});
        } else if (tries < 20) {
            setTimeout(function () { scrollToHash(path, tries + 1); }, 50);
        }
    }

    function focusHeading(path, tries) {
        if (window.location.pathname !== path) { return; }  // gone on to another page
        var heading = document.querySelector("#page-content h1");
        if (heading) {
            if (!heading.hasAttribute("tabindex")) { heading.setAttribute("tabindex", "-1"); }
            heading.focus({preventScroll: true});  // dcc.Link has scrolled to the top
        }
        // React may still be swapping the old page for the new one: if the focused heading
        // was replaced (focus fell back to <body>), try again.
        if (tries < 10) {
            setTimeout(function () {
                var active = document.activeElement;
                if (!heading || !heading.isConnected || !active || active === document.body) {
                    focusHeading(path, tries + 1);
                }
            }, 100);
        }
    }

    /* "Skip to content": focus <main> (href="#main" does the same before scripts run,
       but would leave "#main" in the address). */
    document.addEventListener("click", function (e) {
        var link = e.target && e.target.closest && e.target.closest("a.skip-link");
        var main = link && document.getElementById(link.getAttribute("href").slice(1));
        if (!main) { return; }
        e.preventDefault();
        main.focus();
    });

    /* Dash's dropdown takes Tab on a hidden proxy input (aria-hidden, yet focusable) and
       names its button after the chosen value only. Here the button itself takes Tab, the
       proxy none, and a <label for> the button is put first in its name. Dash's upload
       gets a name for its file input. */
    function fixControls() {
        var buttons = document.querySelectorAll("button.dash-dropdown"), i;
        for (i = 0; i < buttons.length; i++) {
            var button = buttons[i];
            var proxy = button.previousElementSibling;
            if (proxy && proxy.classList.contains("dash-dropdown-focus-target")
                && proxy.getAttribute("tabindex") !== "-1") {
                proxy.setAttribute("tabindex", "-1");
            }
            if (!button.disabled && button.getAttribute("tabindex") !== "0") {
                button.setAttribute("tabindex", "0");
            }
            var label = findLabel(button.id);
            var names = button.getAttribute("aria-labelledby") || "";
            if (label) {
                label.id = label.id || "lookalike-label-" + (++labelCount);  // no spaces
                if (names.split(" ")[0] !== label.id) {
                    button.setAttribute("aria-labelledby", (label.id + " " + names).trim());
                }
            }
        }
        var files = document.querySelectorAll("#photo-upload input[type=file]:not([aria-label])");
        for (i = 0; i < files.length; i++) {
            files[i].setAttribute("aria-label", "Choose a photo to search with");
        }
    }

    function findLabel(id) {
        var labels = document.getElementsByTagName("label"), i;
        for (i = 0; id && i < labels.length; i++) {
            if (labels[i].htmlFor === id) { return labels[i]; }
        }
        return null;
    }

    new MutationObserver(fixControls).observe(document.documentElement, {
        childList: true, subtree: true, attributes: true, attributeFilter: ["tabindex"]});
}());

/* Catalog on a phone: the Filters button opens and closes the filter panel. */
document.addEventListener("click", function (e) {
    var button = e.target && e.target.closest && e.target.closest("#catalog-filters-toggle");
    var panel = button && document.getElementById("catalog-filters");
    if (!panel) { return; }
    var open = !panel.classList.contains("open");
    panel.classList.toggle("open", open);
    button.setAttribute("aria-expanded", open ? "true" : "false");
});
