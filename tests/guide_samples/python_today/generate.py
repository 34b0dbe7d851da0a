# The Images guide (openai 1.x and later), "Generations", in the SDK's error handling.
# The client reads OPENAI_API_KEY and OPENAI_BASE_URL.
import json

import openai
from openai import OpenAI

client = OpenAI()

try:
  response = client.images.generate(
    model="dall-e-3",
    prompt="a white siamese cat",
    size="1024x1024",
    quality="standard",
    n=1,
  )

  image_url = response.data[0].url
  print(json.dumps({"image_url": image_url, "urls": [image.url for image in response.data], "request_id": response._request_id}))
except openai.APIStatusError as e:
  print(json.dumps({"status_code": e.status_code, "class": type(e).__name__, "param": e.param, "code": e.code, "type": e.type, "message": e.message, "body": e.body, "request_id": e.request_id}))
