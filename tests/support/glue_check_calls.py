"""Run under the Glue runtime's own Python and botocore: check every AWS call of the load job.

Input (argv): the job's source file and the folder of service models the job ships
(iac/glue_scripts/botocore_data). The models are put on botocore's search path exactly as the job
does in Glue (load_job.data_api_client: the session's data_path). Prints one JSON document:
botocore's version, the calls found and every problem (an operation the runtime's botocore lacks,
a parameter its model does not have, a required parameter not passed, a paginator it lacks).
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import botocore  # noqa: E402
import botocore.session  # noqa: E402

import glue_calls  # noqa: E402


def main(source_path, models):
    session = botocore.session.get_session()
    session.set_config_variable("data_path", models)
    clients = {service: session.create_client(service, region_name="eu-west-1", aws_access_key_id="testing",
                                              aws_secret_access_key="testing")
               for service in sorted(set(glue_calls.RECEIVERS.values()))}
    operations = {service: set(c.meta.method_to_api_mapping) for service, c in clients.items()}
    with open(source_path, encoding="utf-8") as f:
        calls, problems, _ = glue_calls.inventory(f.read(), operations)
    for call in calls:
        client, where = clients[call["service"]], "line %d: %s.%s" % (call["line"], call["service"], call["method"])
        if call.get("paginator"):
            if not client.can_paginate(call["method"]):
                problems.append(where + ": no paginator in botocore " + botocore.__version__)
            continue
        api = client.meta.method_to_api_mapping.get(call["method"])
        if api is None:
            problems.append(where + ": no such operation in botocore " + botocore.__version__)
            continue
        shape = client.meta.service_model.operation_model(api).input_shape
        members = set(shape.members) if shape else set()
        for name in call["keywords"]:
            if name not in members:
                problems.append("%s: unknown parameter %s in botocore %s" % (where, name, botocore.__version__))
        for name in (shape.required_members if shape else []):
            if name not in call["keywords"]:
                problems.append("%s: required parameter %s not passed" % (where, name))
    print(json.dumps({"botocore": botocore.__version__, "calls": calls, "problems": problems}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
