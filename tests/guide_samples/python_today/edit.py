# The Images guide (openai 1.x and later), "Edits", in the SDK's error handling.
# The client reads OPENAI_API_KEY and OPENAI_BASE_URL.
import json
import os

import openai
from openai import OpenAI

client = OpenAI()

try:
  response = client.images.edit(
    model="dall-e-2",
    image=open(os.getenv("IMAGE", "sunlit_lounge.png"), "rb"),
    mask=open(os.getenv("MASK", "mask.png"), "rb"),
    prompt="A sunlit indoor lounge area with a pool containing a flamingo",
    n=1,
    size="1024x1024"
  )
  image_url = response.data[0].url
  print(json.dumps({"image_url": image_url, "urls": [image.url for image in response.data], "request_id": response._request_id}))
except openai.APIStatusError as e:
  print(json.dumps({"status_code": e.status_code, "class": type(e).__name__, "param": e.param, "code": e.code, "type": e.type, "message": e.message, "body": e.body, "request_id": e.request_id}))
