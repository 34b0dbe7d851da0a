# The Images guide (openai 0.28), "Generations", in the guide's own error handling.
import json
import os

import openai

openai.api_key = os.getenv("OPENAI_API_KEY")  # openai 0.28 reads OPENAI_API_BASE by itself

try:
  response = openai.Image.create(
    prompt="a white siamese cat",
    n=1,
    size="1024x1024"
  )
  image_url = response['data'][0]['url']
  print(json.dumps({"image_url": image_url, "urls": [image['url'] for image in response['data']]}))
except openai.error.OpenAIError as e:
  print(json.dumps({"http_status": e.http_status, "error": e.error, "class": type(e).__name__}))
