// managed.json onValidate: a throw refuses the write with its code and message.
if (!object.mail || object.mail.indexOf("@") < 1) {
    throw {"code": 400, "message": "user " + object.userName + " needs a valid mail, not '" + object.mail + "'"};
}
