// managed.json postCreate: the user is stored; give it a welcome note, a related object.
var note = openidm.create("managed/welcome", null, {
    "userId": newObject._id,
    "message": "Welcome, " + newObject.givenName + "!"
});
logger.info("welcome note {} for {}", note._id, newObject.userName);
