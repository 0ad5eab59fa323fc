// managed.json onCreate: `object` is the user about to be stored.
if (!object.accountStatus) {
    object.accountStatus = "active";
}
logger.info("creating user {} ({})", object.userName, object.displayName);
