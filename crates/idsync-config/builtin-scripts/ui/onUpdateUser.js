// idsync's built-in ui/onUpdateUser.js, a module (docs/idm-samples.md#the-built-in-script-library).
//
// IDM's default managed.json calls `require('ui/onUpdateUser').preserveLastSync(object, oldObject,
// request)` in the onUpdate hook of managed/user. `lastSync` records when the user was last
// synchronized; a client replacing the user (PUT) without it must not erase it. So when the new
// object has no `lastSync` and the request did not name it, the stored one is kept.
function names(request, field) {
    if (!request) {
        return false;
    }
    var content = request.content;
    if (Array.isArray(content)) {
        // A patch: its operations name the fields they touch.
        for (var i = 0; i < content.length; i++) {
            var f = content[i] && content[i].field;
            if (typeof f === "string" && f.replace(/^\//, "").split("/")[0] === field) {
                return true;
            }
        }
        return false;
    }
    return content !== null && typeof content === "object" && content.hasOwnProperty(field);
}

exports.preserveLastSync = function (object, oldObject, request) {
    if (oldObject && oldObject.lastSync !== undefined && object.lastSync === undefined
            && !names(request, "lastSync")) {
        object.lastSync = oldObject.lastSync;
    }
    return object;
};
